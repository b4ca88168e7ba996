// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;

namespace FastEpt.Cli.Replay
{
    /// <summary>
    /// The replay guest: a <see cref="Domain"/> whose host p2m maps every guest page RWX RAM onto
    /// one small pool of host frames (2 MiB, or 1 GiB for 1 GiB pages) that is never touched;
    /// with <see cref="ReplayOptions.Views"/> &gt; 0, that many altp2m views (created empty, with
    /// <see cref="ReplayOptions.ViewAccess"/> as their default access, filled lazily on fault as
    /// Xen does) and one vCPU per view; an optional TLB per view.
    /// </summary>
    internal sealed class ReplayGuest : IDisposable
    {
        /// <summary>Seed of the <see cref="PageMode.Mixed"/> layout.</summary>
        internal const int MixedSeed = 0x5EED;

        private readonly HostMemory _memory;
        private readonly Domain? _domain;

        public ReplayGuest(ReplayOptions options)
        {
            GuestPages = (ulong)(options.GuestBytes >> EptEntry.PageBits);
            int viewCount = options.Views + 1;
            long poolBytes = options.Pages == PageMode.Size1G ? 1L << 30 : 1L << 21;
            long tableFrames = (((long)GuestPages / 512) + ((long)GuestPages / (512 * 512)) + 16) * viewCount;
            long tableBytes = ((tableFrames << EptEntry.PageBits) + poolBytes - 1) / poolBytes * poolBytes;
            _memory = new HostMemory(tableBytes + poolBytes);
            ulong poolMfn = (ulong)(tableBytes >> EptEntry.PageBits);
            P2ms = new P2m[viewCount];
            Tlbs = new SoftTlb?[viewCount];
            Vcpus = new Vcpu[viewCount];
            try
            {
                _domain = new Domain(_memory, new DomainOptions { Vcpus = viewCount, AltViews = options.Views });
                P2ms[0] = _domain.HostP2m;
                Map(_domain.HostP2m, options.Pages, poolMfn);
                for (int v = 0; v < viewCount; v++)
                {
                    Vcpus[v] = _domain.Vcpus[v];
                    if (v > 0)
                    {
                        int id = _domain.Altp2m.CreateView(options.ViewAccess);
                        _domain.Altp2m.Switch(Vcpus[v], id);
                        P2ms[v] = _domain.Altp2m.View(id);
                    }

                    Tlbs[v] = options.TlbEntries > 0 ? new SoftTlb(P2ms[v], options.TlbEntries) : null;
                }
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public ulong GuestPages { get; }

        public Domain Domain => _domain!;

        /// <summary>The p2m of each view (0 = the host p2m).</summary>
        public P2m[] P2ms { get; }

        /// <summary>The TLB of each view (null entries without a TLB).</summary>
        public SoftTlb?[] Tlbs { get; }

        /// <summary>vCPU <c>v</c> runs in view <c>v</c>.</summary>
        public Vcpu[] Vcpus { get; }

        private void Map(P2m p2m, PageMode mode, ulong poolMfn)
        {
            Random random = new Random(MixedSeed);
            switch (mode)
            {
                case PageMode.Size1G:
                    for (ulong gfn = 0; gfn < GuestPages; gfn += 1UL << 18)
                    {
                        p2m.SetEntry(gfn, poolMfn, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX);
                    }

                    break;
                case PageMode.Size2M:
                    for (ulong gfn = 0; gfn < GuestPages; gfn += 512)
                    {
                        p2m.SetEntry(gfn, poolMfn, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
                    }

                    break;
                default:
                    for (ulong gfn = 0; gfn < GuestPages; gfn += 512)
                    {
                        if (mode == PageMode.Mixed && random.Next(2) == 0)
                        {
                            p2m.SetEntry(gfn, poolMfn, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
                            continue;
                        }

                        for (ulong i = 0; i < 512; i++)
                        {
                            p2m.SetEntry(gfn + i, poolMfn + i, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                        }
                    }

                    break;
            }
        }

        public void Dispose()
        {
            _domain?.Dispose();
            _memory.Dispose();
        }
    }
}
