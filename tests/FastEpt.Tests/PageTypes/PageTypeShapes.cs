// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.PageTypes
{
    /// <summary>
    /// Guest page-table hierarchies for the page-type tests: trees with children shared within a
    /// table, across tables and across levels, entries at both ends of a table, read-only and
    /// writable data mappings (one a read-only self-map of an L1), and hierarchies with one
    /// invalid entry deep inside.
    /// </summary>
    internal static class PageTypeShapes
    {
        public static readonly string[] Valid = ["L2-three-L1s", "L3-shared-L2s", "L4-shared-L3s-and-L2s", "L4-edge-chain"];

        public static readonly string[] Failing = ["L3-large-page-at-5", "L4-L1-maps-an-L2-writable", "L3-entry-outside-memory", "L3-entry-not-allocated"];

        public static (ulong Root, PageType Type) Build(PageTypeWorld w, string name)
        {
            switch (name)
            {
                case "L2-three-L1s":
                {
                    ulong d0 = w.NewFrame(), d1 = w.NewFrame(), d2 = w.NewFrame(), d3 = w.NewFrame();
                    ulong a = L1(w, (0, d0, true), (1, d1, false));
                    w.Link(a, 5, a, writable: false);                       // a read-only self-map is allowed
                    ulong b = L1(w, (10, d0, true), (11, d2, true));        // d0 mapped writable twice
                    ulong c = L1(w, (511, d3, false));
                    return (w.NewTable((0, a), (7, b), (300, a), (511, c)), PageType.L2);
                }

                case "L3-shared-L2s":
                {
                    ulong d0 = w.NewFrame(), d1 = w.NewFrame();
                    ulong l1x = L1(w, (0, d0, true));
                    ulong l1y = L1(w, (3, d1, false), (4, d0, true));
                    ulong x = w.NewTable((0, l1x), (9, l1y));
                    ulong y = w.NewTable((1, l1y));
                    ulong z = w.NewTable();
                    return (w.NewTable((0, x), (3, y), (200, x), (511, z)), PageType.L3);
                }

                case "L4-shared-L3s-and-L2s":
                {
                    ulong d0 = w.NewFrame(), d1 = w.NewFrame(), d2 = w.NewFrame();
                    ulong l1p = L1(w, (0, d0, true), (1, d1, false));
                    ulong l1q = L1(w, (2, d2, true));
                    ulong p = w.NewTable((0, l1p));
                    ulong q = w.NewTable((4, l1q), (5, l1p));
                    ulong r = w.NewTable();
                    ulong a = w.NewTable((0, p), (5, q));
                    ulong b = w.NewTable((0, q), (100, r));
                    return (w.NewTable((0, a), (1, b), (511, a)), PageType.L4);
                }

                case "L4-edge-chain":
                {
                    ulong d = w.NewFrame();
                    ulong l1 = L1(w, (255, d, true), (511, d, true));
                    ulong l2 = w.NewTable((0, l1));
                    ulong l3 = w.NewTable((511, l2));
                    return (w.NewTable((0, l3), (511, l3)), PageType.L4);
                }

                case "L3-large-page-at-5":
                {
                    ulong root = w.NewTable();
                    for (int i = 0; i < 5; i++)
                    {
                        w.Link(root, i, w.NewTable());
                    }

                    w.SetEntry(root, 5, (w.NewFrame() << 12) | PageTypeWorld.Present | PageTypeWorld.Rw | PageTypeWorld.Ps);
                    w.Link(root, 6, w.NewTable());
                    return (root, PageType.L3);
                }

                case "L4-L1-maps-an-L2-writable":
                {
                    ulong d = w.NewFrame();
                    ulong good = L1(w, (0, d, true));
                    ulong x = w.NewTable((0, good));
                    ulong bad = L1(w, (0, d, true));
                    w.Link(bad, 7, x, writable: true);                      // a writable mapping of a page table
                    ulong y = w.NewTable((3, good), (8, bad));
                    ulong a = w.NewTable((0, x), (2, y));
                    return (w.NewTable((0, a)), PageType.L4);
                }

                case "L3-entry-outside-memory":
                {
                    ulong x = w.NewTable((0, L1(w, (0, w.NewFrame(), true))));
                    ulong y = w.NewTable((1, L1(w)));
                    w.SetEntry(y, 6, (0xF_FFFFUL << 12) | PageTypeWorld.Present | PageTypeWorld.Rw);
                    return (w.NewTable((0, x), (2, y)), PageType.L3);
                }

                case "L3-entry-not-allocated":
                {
                    ulong x = w.NewTable((0, L1(w, (0, w.NewFrame(), true))));
                    ulong y = w.NewTable((1, L1(w)));
                    ulong nowhere = (ulong)w.Memory.FrameCount - 1;         // never allocated by these shapes
                    Assert.False(w.Memory.IsAllocated(nowhere));
                    w.Link(y, 6, nowhere);
                    return (w.NewTable((0, x), (2, y)), PageType.L3);
                }

                default:
                    throw new ArgumentOutOfRangeException(nameof(name), name, "unknown shape");
            }
        }

        /// <summary>A new L1 mapping the given data frames.</summary>
        public static ulong L1(PageTypeWorld w, params (int Index, ulong Data, bool Writable)[] entries)
        {
            ulong t = w.NewFrame();
            foreach ((int index, ulong data, bool writable) in entries)
            {
                w.Link(t, index, data, writable);
            }

            return t;
        }
    }
}
