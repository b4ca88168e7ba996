// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.P2mTests
{
    public sealed partial class P2mCorruptionTests
    {
        /// <summary>One live table: its frame, Intel level and the first GFN it translates.</summary>
        private readonly record struct Table(ulong Mfn, int Level, ulong FirstGfn);

        /// <summary>A populated p2m (4K/2M/1G leaves of many types, PoD, paging, MMIO) in its own host memory.</summary>
        private sealed class Fixture : IDisposable
        {
            private readonly Dictionary<ulong, byte[]> _pristine;

            public Fixture(P2mOptions options)
            {
                Memory = new HostMemory((GuestFrames + TableBudget) << 12);
                Assert.Equal(0UL, Memory.AllocateFrames(GuestFrames));
                P2m = new P2m(Memory, options);
                bool has1G = options.Support1G;

                Map(Gfn4K, Gfn4K, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                Map(Gfn4K + 1, 0x2001, PageOrder.Size4K, P2mType.RamRo, P2mAccess.RX);
                Map(Gfn4K + 2, 0x2002, PageOrder.Size4K, P2mType.GrantMapRo, P2mAccess.R);
                Map(Gfn4K + 3, Mfn.Invalid, PageOrder.Size4K, P2mType.RamPaged, P2mAccess.RWX);
                Map(Gfn4K + 4, 0x1_0000_0000, PageOrder.Size4K, P2mType.MmioDirect, P2mAccess.RW);
                Map(Gfn4K + 5, 0x2005, PageOrder.Size4K, P2mType.RamRw, options.ExecuteOnly ? P2mAccess.X : P2mAccess.RX);
                Map(Gfn4K + 6, Mfn.Invalid, PageOrder.Size4K, P2mType.PopulateOnDemand, P2mAccess.RWX);
                Map(0x200, 0x3000 & ~511UL, PageOrder.Size2M, P2mType.RamLogDirty, P2mAccess.RWX);
                Map(0x400, Mfn.Invalid, PageOrder.Size2M, P2mType.PopulateOnDemand, P2mAccess.RWX);
                for (ulong i = 0; i < 24; i++)
                {
                    P2mType type = (i % 4) switch
                    {
                        0 => P2mType.RamRw,
                        1 => P2mType.GrantMapRw,
                        2 => P2mType.MmioDirect,
                        _ => P2mType.RamShared,
                    };
                    Map(0x80000 + i * 512, 0x10000 + i * 512, PageOrder.Size2M, type, (P2mAccess)(i % 8 == 2 ? 7 : (int)(i % 8) | 1));
                }

                // 4K sets inside two of those 2M pages split them.
                Map(Gfn2M + 512 + 7, 0x5007, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                Map(Gfn2M + 1024 + 100, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);
                if (has1G)
                {
                    Map(Gfn1G, 0, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX);
                    Map(0xC0000, 0, PageOrder.Size1G, P2mType.GrantMapRw, P2mAccess.RW);
                    Map(0x100000, Mfn.Invalid, PageOrder.Size1G, P2mType.PopulateOnDemand, P2mAccess.RWX);
                }

                Map(GfnFar, 0x6000 & ~511UL, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
                Map(GfnFar + 512 * 3 + 9, 0x6009, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RX);
                _pristine = LiveTables().ToDictionary(t => t.Mfn, t => Memory.Frame(t.Mfn).ToArray());
            }

            public HostMemory Memory { get; }

            public P2m P2m { get; }

            public List<ulong> MappedGfns { get; } = new();

            public void Dispose()
            {
                P2m.Dispose();
                Memory.Dispose();
            }

            public List<Table> LiveTables()
            {
                List<Table> tables = new();
                Collect(P2m.RootMfn, P2m.Levels, 0, tables);
                return tables;
            }

            public ulong SlotHpa(ulong gfn, int level)
            {
                ulong table = P2m.RootMfn;
                for (int l = P2m.Levels; ; l--)
                {
                    ulong hpa = (table << 12) + ((gfn >> (9 * (l - 1))) & 511) * 8;
                    if (l == level)
                    {
                        return hpa;
                    }

                    ulong pte = Memory.ReadUInt64(hpa);
                    Assert.True((pte & EptEntry.RwxMask) != 0 && (pte & EptEntry.SuperPageBit) == 0, $"no table at level {l} for 0x{gfn:X}");
                    table = (pte & EptEntry.MfnMask) >> 12;
                }
            }

            public void Poke(ulong gfn, int level, Func<ulong, ulong> change)
            {
                ulong hpa = SlotHpa(gfn, level);
                Memory.WriteUInt64(hpa, change(Memory.ReadUInt64(hpa)));
            }

            /// <summary>Restores every table byte as built, checks the frame accounting, then disposes.</summary>
            public void AssertDisposesCleanly()
            {
                foreach ((ulong mfn, byte[] bytes) in _pristine)
                {
                    bytes.CopyTo(Memory.Frame(mfn));
                }

                Assert.Equal(_pristine.Count, P2m.TableFrameCount);
                P2mConcurrencyTests.ReclaimUntilEmpty(P2m);     // any p2m's reclamation pass may free pending frames meanwhile
                Assert.Equal(GuestFrames + P2m.TableFrameCount + P2m.PendingReclaimFrameCount, Memory.AllocatedFrameCount);
                P2m.Dispose();
                Assert.Equal(GuestFrames, Memory.AllocatedFrameCount);
            }

            private void Map(ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access)
            {
                P2m.SetEntry(gfn, mfn, order, type, access, (gfn & 1) == 0 ? SuppressVe.Set : SuppressVe.Clear);
                MappedGfns.Add(gfn);
                MappedGfns.Add(gfn + (1UL << (int)order) - 1);
            }

            private void Collect(ulong table, int level, ulong firstGfn, List<Table> tables)
            {
                tables.Add(new Table(table, level, firstGfn));
                if (level == 1)
                {
                    return;
                }

                for (ulong i = 0; i < 512; i++)
                {
                    ulong pte = Memory.ReadUInt64((table << 12) + i * 8);
                    if ((pte & EptEntry.RwxMask) != 0 && (pte & EptEntry.SuperPageBit) == 0)
                    {
                        Collect((pte & EptEntry.MfnMask) >> 12, level - 1, firstGfn + (i << (9 * (level - 1))), tables);
                    }
                }
            }
        }
    }
}
