// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests
{
    /// <summary>
    /// Random raw EPT hierarchies for differential tests: <see cref="Frames"/> host frames,
    /// frame 0 the root, every slot of every frame a random entry biased towards the
    /// interesting shapes (well-formed pointers, leaves and superpages with random rights and
    /// memory types, reserved bits, pointers outside host memory, cycles, garbage).
    /// </summary>
    internal static class RandomTables
    {
        /// <summary>Host frames of one random state (the root is frame 0).</summary>
        public const int Frames = 64;

        public static ulong Gpa(Random random, RandomConfig config)
            => (ulong)random.NextInt64() & ((1UL << config.Options.AddressBits) - 1);

        // Frames 1..63 are split into one group per level below the root; most pointers go to the
        // next level's group so a good share of walks reaches a leaf, the rest anywhere (cycles,
        // level skips) or outside host memory. Entries are biased towards the interesting shapes.
        public static void Fill(Random random, RandomConfig config, params HostMemory[] memories)
        {
            int levels = config.Options.Levels;
            int groupSize = (Frames - 1) / (levels - 1);
            for (ulong mfn = 0; mfn < Frames; mfn++)
            {
                // Frame 0 is the root (top level); group g holds tables of level levels-1-g.
                int level = mfn == 0 ? levels : levels - 1 - (int)((mfn - 1) / (ulong)groupSize);
                if (level < 1)
                {
                    level = 1;
                }

                for (int slot = 0; slot < 512; slot++)
                {
                    ulong entry = Entry(random, config, level, groupSize);
                    ulong hpa = (mfn << 12) + (ulong)slot * 8;
                    foreach (HostMemory m in memories)
                    {
                        m.WriteUInt64(hpa, entry);
                    }
                }
            }
        }

        private static ulong Entry(Random random, RandomConfig config, int level, int groupSize)
        {
            int maxPhy = config.Options.HostAddressBits;
            int kind = random.Next(100);
            ulong rwx = (ulong)(uint)random.Next(8);
            ulong entry;
            if (kind < 8)
            {
                return 0;
            }
            else if (kind < 58 && level > 1)
            {
                // A middle entry: usually well-formed and pointing at the next level's tables.
                int childGroup = config.Options.Levels - level;      // group of level-1 tables
                ulong child = random.Next(100) switch
                {
                    < 85 => 1 + (ulong)(childGroup * groupSize + random.Next(groupSize)),
                    < 93 => (ulong)(uint)random.Next(Frames),
                    _ => (ulong)(uint)random.Next(Frames, 4096),              // outside host memory
                };
                entry = (child << 12) | (random.Next(8) == 0 ? rwx : 7);
                if (random.Next(16) == 0)
                {
                    entry |= (ulong)(uint)random.Next(16) << 3;               // reserved 6:3
                }

                if (random.Next(16) == 0)
                {
                    entry |= 1UL << 7;                                  // turns it into a superpage
                }
            }
            else if (kind < 92)
            {
                // A leaf (or superpage) candidate with a random memory type and frame.
                ulong frame = random.Next(4) switch
                {
                    0 => (ulong)random.NextInt64(1L << 20),
                    1 => (ulong)random.NextInt64(1L << 11) << 9,
                    2 => (ulong)random.NextInt64(1L << 8) << 18,
                    _ => (ulong)random.NextInt64(1L << 30),
                };
                entry = rwx | ((ulong)(uint)random.Next(8) << 3) | (random.Next(2) == 0 ? 1UL << 6 : 0)
                        | (level > 1 && random.Next(3) != 0 ? 1UL << 7 : 0) | (frame << 12);
                if (random.Next(8) == 0)
                {
                    entry |= 7;
                }
            }
            else
            {
                return (ulong)random.NextInt64() ^ ((ulong)(uint)random.Next() << 63);
            }

            // Bits above MAXPHYADDR now and then; the software bits (8-11, 52-63) always random.
            if (maxPhy < 52 && random.Next(20) == 0)
            {
                entry |= 1UL << random.Next(maxPhy, 52);
            }

            entry |= (ulong)(uint)random.Next(16) << 8;
            entry |= (ulong)(uint)random.Next(4096) << 52;
            return entry;
        }
    }

    /// <summary>Random p2m options for a random-table state; every fourth state is 5-level.</summary>
    internal sealed record RandomConfig(P2mOptions Options)
    {
        private static readonly int[] Widths = { 36, 39, 46, 52 };

        public static RandomConfig Next(Random random, int state)
        {
            int levels = state % 4 == 3 ? 5 : 4;
            return new RandomConfig(new P2mOptions
            {
                Levels = levels,
                AddressBits = 12 + 9 * levels,
                HostAddressBits = Widths[random.Next(Widths.Length)],
                ExecuteOnly = random.Next(3) != 0,
                Support1G = random.Next(3) != 0,
                AccessDirty = random.Next(4) == 0,
            });
        }

        /// <summary>The shape the interleaved batch walkers handle: 4 levels, no accessed/dirty updates.</summary>
        public static RandomConfig NextFastShape(Random random)
            => new(new P2mOptions
            {
                Levels = 4,
                AddressBits = 48,
                HostAddressBits = Widths[random.Next(Widths.Length)],
                ExecuteOnly = random.Next(3) != 0,
                Support1G = random.Next(3) != 0,
            });

        public override string ToString()
            => $"levels={Options.Levels} maxphyaddr={Options.HostAddressBits} xo={Options.ExecuteOnly} 1g={Options.Support1G} ad={Options.AccessDirty}";
    }
}
