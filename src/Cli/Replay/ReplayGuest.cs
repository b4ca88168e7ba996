// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;

namespace FastEpt.Cli.Replay
{
    /// <summary>
    /// The replay guest: one host memory, one p2m per view with identical mappings (all RWX RAM),
    /// every guest page mapped onto one small pool of host frames (2 MiB, or 1 GiB for 1 GiB pages)
    /// that is never touched, and an optional TLB per view.
    /// </summary>
    internal sealed class ReplayGuest : IDisposable
    {
        /// <summary>Seed of the <see cref="PageMode.Mixed"/> layout.</summary>
        internal const int MixedSeed = 0x5EED;

        private readonly HostMemory _memory;

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
            try
            {
                for (int v = 0; v < viewCount; v++)
                {
                    P2ms[v] = new P2m(_memory);
                    Map(P2ms[v], options.Pages, poolMfn);
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

        public P2m[] P2ms { get; }

        public SoftTlb?[] Tlbs { get; }

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
            foreach (P2m? p in P2ms ?? Array.Empty<P2m>())
            {
                p?.Dispose();
            }

            _memory.Dispose();
        }
    }
}
