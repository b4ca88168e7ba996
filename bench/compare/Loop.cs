// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Diagnostics;
using FastEpt;

namespace FastEpt.Compare
{
    /// <summary>
    /// The single-thread SetEntry loop of the concurrency goals ("SetEntry alone"): a 4 GiB guest
    /// in 4K pages, 4K remaps over [2 GiB, 3 GiB) in a fixed random order, each GFN's MFN
    /// alternating pass by pass so that every call changes an entry.
    /// </summary>
    public static class Loop
    {
        private const long GuestFrames = 1L << 20;
        private static P2m? s_p2m;
        private static ulong s_first;
        private static ulong[] s_gfns = [];
        private static long s_cursor;

        /// <summary>Builds the guest (a second or two).</summary>
        public static void Setup()
        {
            var memory = new HostMemory((4L << 30) + (256L << 20));
            s_first = memory.AllocateFrames(GuestFrames);
            s_p2m = new P2m(memory);
            for (ulong g = 0; g < (ulong)GuestFrames; g++)
            {
                s_p2m.SetEntry(g, s_first + g, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            var random = new Random(7);
            s_gfns = new ulong[1 << 18];
            for (int i = 0; i < s_gfns.Length; i++)
            {
                s_gfns[i] = (ulong)((GuestFrames / 2) + i);
            }

            random.Shuffle(s_gfns);
        }

        /// <summary>Remaps for about <paramref name="seconds"/>; returns ns per SetEntry.</summary>
        public static double Run(double seconds)
        {
            P2m p2m = s_p2m!;
            ulong first = s_first;
            ulong[] gfns = s_gfns;
            long end = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
            long start = Stopwatch.GetTimestamp();
            long calls = 0, now, cursor = s_cursor;
            do
            {
                for (int k = 0; k < 1024; k++, cursor++)
                {
                    ulong gfn = gfns[cursor % gfns.Length];
                    ulong pass = (ulong)(cursor / gfns.Length);
                    p2m.SetEntry(gfn, first + gfn + (pass & 1), PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                }

                calls += 1024;
                now = Stopwatch.GetTimestamp();
            }
            while (now < end);

            s_cursor = cursor;
            return (now - start) * 1e9 / Stopwatch.Frequency / calls;
        }
    }
}
