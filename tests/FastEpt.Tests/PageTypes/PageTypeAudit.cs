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
                                 IReadOnlyDictionary<ulong, int> held, IReadOnlyDictionary<ulong, int> claims)
        {
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
    }
}
