// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Text;

namespace FastEpt.Tests.PageTypes
{
    /// <summary>
    /// An independent recount of every reference a <see cref="PageTypeTable"/> should hold,
    /// derived only from the guest entries in host memory, each frame's recorded progress
    /// (validated, partial, nr_validated, partial_flags) and what the test holds itself; then
    /// compared with every frame's counts. It encodes the XSA-299 invariants (docs/model/page-types.md §7.2):
    /// <list type="bullet">
    /// <item>entries [0, nr) of a validated or partial table hold one general and one type reference on their child
    /// (an L1 entry: a general one on its data frame, and a writable type one when R/W is set);</item>
    /// <item>the entry at nr holds one general reference iff partial_flags is set;</item>
    /// <item>a partial frame holds one general reference on itself and exactly one type reference;</item>
    /// <item>each top-level reference holds one of each, each pending put one general reference;</item>
    /// <item>nothing is half-owned at rest: a page-table frame with a type reference is validated or partial;</item>
    /// <item>and the table holds exactly one HostMemory reference on every frame it references.</item>
    /// </list>
    /// Call it only when no operation is in flight.
    /// </summary>
    internal static class PageTypeAudit
    {
        public static void Check(HostMemory memory, PageTypeTable table,
                                 IReadOnlyDictionary<ulong, int> held, IReadOnlyDictionary<ulong, int> claims,
                                 IReadOnlyDictionary<ulong, PageType>? heldTypes = null)
        {
            if (heldTypes is not null)
            {
                CheckRestFromTables(memory, table, held, claims, heldTypes);
            }

            long n = memory.FrameCount;
            var states = new PageTypeState[n];
            var general = new int[n];
            var typeRefs = new int[n];
            var implied = new PageType[n];
            var problems = new StringBuilder();

            void Problem(string text)
            {
                if (problems.Length < 4000)
                {
                    problems.AppendLine(text);
                }
            }

            void Reference(ulong from, int index, ulong child, bool typed, PageType type)
            {
                if (child >= (ulong)n)
                {
                    Problem($"0x{from:X}[{index}] holds a reference on 0x{child:X}, outside memory");
                    return;
                }

                general[child]++;
                if (typed)
                {
                    typeRefs[child]++;
                    if (implied[child] != PageType.None && implied[child] != type)
                    {
                        Problem($"0x{child:X} is referenced both as {implied[child]} and as {type} (0x{from:X}[{index}])");
                    }

                    implied[child] = type;
                }
            }

            for (ulong f = 0; f < (ulong)n; f++)
            {
                states[f] = table.GetState(f);
            }

            for (ulong f = 0; f < (ulong)n; f++)
            {
                PageTypeState s = states[f];
                bool pageTable = s.Type is >= PageType.L1 and <= PageType.L4;

                // The state on its own.
                if (s.TypeCount == 0 && (s.Type != PageType.None || s.Validated || s.Partial || s.NrValidated != 0 || s.PartialSet))
                {
                    Problem($"0x{f:X}: no type reference but {s}");
                }

                if (s.TypeCount > 0 && s.Type == PageType.None)
                {
                    Problem($"0x{f:X}: type references without a type: {s}");
                }

                if (pageTable && s.TypeCount > 0 && s.Validated == s.Partial)
                {
                    Problem($"0x{f:X}: a page table at rest must be exactly one of validated or partial: {s}");
                }

                if (s.Validated && (!pageTable || s.NrValidated != 512 || s.PartialSet))
                {
                    Problem($"0x{f:X}: bad validated state {s}");
                }

                if (s.Partial && (s.Type is not (PageType.L2 or PageType.L3 or PageType.L4) || s.TypeCount != 1
                                  || s.NrValidated > 511 || (s.NrValidated == 0 && !s.PartialSet)))
                {
                    Problem($"0x{f:X}: bad partial state {s}");
                }

                if (!pageTable && (s.Validated || s.Partial || s.PartialSet || s.NrValidated != 0))
                {
                    Problem($"0x{f:X}: a non-table frame with table state {s}");
                }

                // What its entries hold.
                if (pageTable && s.TypeCount > 0)
                {
                    int full = s.Validated ? 512 : s.NrValidated;
                    for (int i = 0; i < full; i++)
                    {
                        ulong pte = memory.ReadUInt64((f << 12) + ((ulong)i << 3));
                        if ((pte & PageTypeWorld.Present) == 0)
                        {
                            continue;
                        }

                        ulong child = (pte & 0x000F_FFFF_FFFF_F000) >> 12;
                        if (s.Type == PageType.L1)
                        {
                            bool writable = (pte & PageTypeWorld.Rw) != 0;
                            Reference(f, i, child, writable, PageType.Writable);
                        }
                        else
                        {
                            Reference(f, i, child, true, s.Type - 1);
                        }
                    }

                    if (s.Partial && s.PartialSet)
                    {
                        ulong pte = memory.ReadUInt64((f << 12) + ((ulong)s.NrValidated << 3));
                        if ((pte & PageTypeWorld.Present) == 0)
                        {
                            Problem($"0x{f:X}: partial_flags set on a non-present entry {s.NrValidated}");
                        }
                        else
                        {
                            Reference(f, s.NrValidated, (pte & 0x000F_FFFF_FFFF_F000) >> 12, false, PageType.None);
                        }
                    }
                }

                if (s.Partial)
                {
                    general[f]++;       // its reference on itself
                    typeRefs[f]++;      // the type reference that goes with the flag
                }
            }

            foreach ((ulong mfn, int count) in held)
            {
                general[mfn] += count;
                typeRefs[mfn] += count;
            }

            foreach ((ulong mfn, int count) in claims)
            {
                general[mfn] += count;
            }

            for (ulong f = 0; f < (ulong)n; f++)
            {
                PageTypeState s = states[f];
                int pending = claims.GetValueOrDefault(f);
                if (s.GeneralCount != general[f] || s.TypeCount != typeRefs[f] || s.PendingPuts != pending)
                {
                    Problem($"0x{f:X}: recount general {general[f]} type {typeRefs[f]} pending {pending}, table {s}");
                }

                if (implied[f] != PageType.None && s.Type != implied[f])
                {
                    Problem($"0x{f:X}: referenced as {implied[f]} but typed {s.Type}");
                }

                int pins = memory.ReferenceCount(f);
                if (pins != (s.GeneralCount > 0 ? 1 : 0))
                {
                    Problem($"0x{f:X}: {pins} HostMemory references for general count {s.GeneralCount}");
                }
            }

            Assert.True(problems.Length == 0, "Page-type audit failed:\n" + problems);
        }

        /// <summary>
        /// At rest (no pending put, no partial frame), every frame's state follows from the guest
        /// entries and the test's own top-level references alone, with nothing read from the table
        /// under test: a frame holding a page-table type reference is validated and holds one
        /// general and one type reference on each present child (an L1 entry: a general one on its
        /// data frame, and a writable type one when R/W is set), once per frame however many
        /// references it has (docs/model/page-types.md §7.2). Anything else, a partial frame
        /// included, is reported.
        /// </summary>
        private static void CheckRestFromTables(HostMemory memory, PageTypeTable table, IReadOnlyDictionary<ulong, int> held,
                                                IReadOnlyDictionary<ulong, int> claims, IReadOnlyDictionary<ulong, PageType> heldTypes)
        {
            if (claims.Values.Any(c => c != 0))
            {
                return;     // a put in flight: its progress is history, not tables; the recount covers it
            }

            long n = memory.FrameCount;
            var type = new PageType[n];
            var typeCount = new int[n];
            var general = new int[n];
            var problems = new StringBuilder();
            var pending = new Stack<ulong>();      // frames typed as tables whose entries are still to be counted

            void Typed(ulong f, PageType t, int count, string why)
            {
                if (f >= (ulong)n)
                {
                    problems.AppendLine($"{why}: 0x{f:X} is outside memory");
                    return;
                }

                general[f] += count;
                typeCount[f] += count;
                if (type[f] == PageType.None)
                {
                    type[f] = t;
                    if (t is >= PageType.L1 and <= PageType.L4)
                    {
                        pending.Push(f);
                    }
                }
                else if (type[f] != t)
                {
                    problems.AppendLine($"{why}: 0x{f:X} would be both {type[f]} and {t}: no state at rest holds that");
                }
            }

            foreach ((ulong mfn, int count) in held)
            {
                if (count != 0)
                {
                    Typed(mfn, heldTypes[mfn], count, $"held 0x{mfn:X}");
                }
            }

            while (pending.Count > 0)
            {
                ulong f = pending.Pop();
                for (int i = 0; i < 512; i++)
                {
                    ulong pte = memory.ReadUInt64((f << 12) + ((ulong)i << 3));
                    if ((pte & PageTypeWorld.Present) == 0)
                    {
                        continue;
                    }

                    ulong child = (pte & 0x000F_FFFF_FFFF_F000) >> 12;
                    if (type[f] != PageType.L1)
                    {
                        Typed(child, type[f] - 1, 1, $"0x{f:X}[{i}]");
                    }
                    else if ((pte & PageTypeWorld.Rw) != 0)
                    {
                        Typed(child, PageType.Writable, 1, $"0x{f:X}[{i}]");
                    }
                    else if (child < (ulong)n)
                    {
                        general[child]++;
                    }
                }
            }

            for (ulong f = 0; f < (ulong)n && problems.Length < 4000; f++)
            {
                bool isTable = type[f] is >= PageType.L1 and <= PageType.L4;
                var expected = new PageTypeState(general[f], type[f], typeCount[f], validated: isTable, partial: false,
                                                 nrValidated: isTable ? 512 : 0, partialSet: false, pendingPuts: 0);
                PageTypeState actual = table.GetState(f);
                if (actual != expected)
                {
                    problems.AppendLine($"0x{f:X}: from the tables {expected}, table {actual}");
                }
            }

            Assert.True(problems.Length == 0, "Page-type audit (from the tables alone) failed:\n" + problems);
        }
    }
}
