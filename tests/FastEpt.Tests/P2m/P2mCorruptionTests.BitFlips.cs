// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.P2mTests
{
    public sealed partial class P2mCorruptionTests
    {
        [Theory]
        [InlineData(1, false)]
        [InlineData(2, false)]
        [InlineData(3, false)]
        [InlineData(4, true)]
        [InlineData(5, true)]
        [InlineData(6, true)]
        public void Readers_RandomBitFlipsInLiveTables_NeverThrowAndStayWellFormed(int seed, bool accessDirty)
        {
            Random rng = new Random(seed);
            using Fixture f = new Fixture(new P2mOptions { AccessDirty = accessDirty });
            List<Table> tables = f.LiveTables();
            Dictionary<ulong, byte[]> pristine = tables.ToDictionary(t => t.Mfn, t => f.Memory.Frame(t.Mfn).ToArray());

            // What every probe reads on intact tables; it must read the same after each restore.
            ulong[] probes = f.MappedGfns.Concat(Enumerable.Range(0, 64).Select(_ => RandomGfn(rng, f))).ToArray();
            Dictionary<(ulong, AccessKind), EptTranslation> cleanTranslations = new();
            Dictionary<ulong, P2mEntry> cleanEntries = new();
            foreach (ulong gfn in probes)
            {
                cleanEntries[gfn] = f.P2m.GetEntry(gfn);
                for (int a = 1; a < 8; a++)
                {
                    cleanTranslations[(gfn, (AccessKind)a)] = f.P2m.Translate((gfn << 12) | 0x7F8, (AccessKind)a);
                }
            }

            for (int round = 0; round < Rounds; round++)
            {
                string context = $"seed {seed}, accessDirty {accessDirty}, round {round}";
                List<ulong> routed = new();
                List<string> flips = new();
                int count = rng.Next(1, 4);
                for (int i = 0; i < count; i++)
                {
                    Table t = tables[rng.Next(tables.Count)];
                    ulong slot = PickSlot(rng, f.Memory, t);
                    int bit = rng.Next(64);
                    ulong hpa = (t.Mfn << 12) + slot * 8;
                    f.Memory.WriteUInt64(hpa, f.Memory.ReadUInt64(hpa) ^ (1UL << bit));
                    flips.Add($"table 0x{t.Mfn:X} (level {t.Level}) slot {slot} bit {bit}");

                    // GFNs whose walk goes through the flipped slot: its first, last and a random one.
                    ulong span = 1UL << (9 * (t.Level - 1));
                    ulong first = t.FirstGfn + slot * span;
                    routed.Add(first);
                    routed.Add(first + span - 1);
                    routed.Add(first + (ulong)rng.NextInt64((long)span));
                }

                string where = $"{context}, flips [{string.Join("; ", flips)}]";
                foreach (ulong gfn in routed.Concat(Enumerable.Range(0, 8).Select(_ => probes[rng.Next(probes.Length)])))
                {
                    ProbeCorrupted(f, gfn, (ulong)rng.Next(4096), where);
                }

                // Restore every table byte (A/D bits the walks set included).
                foreach (Table t in tables)
                {
                    pristine[t.Mfn].CopyTo(f.Memory.Frame(t.Mfn));
                }

                for (int i = 0; i < 4; i++)
                {
                    ulong gfn = probes[rng.Next(probes.Length)];
                    var kind = (AccessKind)rng.Next(1, 8);
                    Assert.True(cleanEntries[gfn] == f.P2m.GetEntry(gfn), $"{where}: GetEntry(0x{gfn:X}) differs after restore");
                    Assert.True(cleanTranslations[(gfn, kind)] == f.P2m.Translate((gfn << 12) | 0x7F8, kind), $"{where}: Translate(0x{gfn:X}, {kind}) differs after restore");
                }
            }

            // The hierarchy is intact and still writable, and every frame comes back on Dispose.
            foreach (ulong gfn in probes)
            {
                Assert.Equal(cleanEntries[gfn], f.P2m.GetEntry(gfn));
            }

            f.P2m.SetEntry(Gfn4K + 0x10, 0x77, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(new EptTranslation(EptStatus.Ok, 0x77123, 1, 0), f.P2m.Translate(((Gfn4K + 0x10) << 12) | 0x123, AccessKind.Write));
            f.AssertDisposesCleanly();
        }

        private static ulong RandomGfn(Random rng, Fixture f) => rng.Next(4) switch
        {
            0 => (ulong)((long)f.MappedGfns[rng.Next(f.MappedGfns.Count)] + rng.Next(-2, 3)),
            1 => Gfn1G + (ulong)rng.Next(1 << 18),
            2 => (ulong)rng.Next(1 << 20),
            _ => (ulong)rng.NextInt64(1L << 36),
        };

        // Mostly present slots (the interesting ones), sometimes any slot.
        private static ulong PickSlot(Random rng, HostMemory memory, Table t)
        {
            for (int tries = 0; tries < 8 && rng.Next(4) != 0; tries++)
            {
                ulong slot = (ulong)rng.Next(512);
                if ((memory.ReadUInt64((t.Mfn << 12) + slot * 8) & EptEntry.RwxMask) != 0)
                {
                    return slot;
                }
            }

            return (ulong)rng.Next(512);
        }

        private static void ProbeCorrupted(Fixture f, ulong gfn, ulong offset, string where)
        {
            gfn &= (1UL << 36) - 1;
            ulong gpa = (gfn << 12) | offset;
            foreach (AccessKind kind in AllKinds())
            {
                EptTranslation t;
                try
                {
                    t = f.P2m.Translate(gpa, kind);
                }
                catch (Exception ex)
                {
                    Assert.Fail($"{where}: Translate(0x{gpa:X}, {kind}) threw {ex}");
                    return;
                }

                AssertWellFormed(t, gpa, kind, where);
            }

            P2mEntry e;
            try
            {
                e = f.P2m.GetEntry(gfn);
            }
            catch (Exception ex)
            {
                Assert.Fail($"{where}: GetEntry(0x{gfn:X}) threw {ex}");
                return;
            }

            AssertWellFormedEntry(e, $"{where}: GetEntry(0x{gfn:X})");
        }
    }
}
