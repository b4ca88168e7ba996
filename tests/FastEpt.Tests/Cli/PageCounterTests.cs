// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.CompilerServices;
using FastEpt.Cli.Replay;

namespace FastEpt.Tests.Cli
{
    public sealed class PageCounterTests
    {
        [Theory]
        [InlineData(1, 100)]
        [InlineData(2, 5_000)]
        [InlineData(3, 200_000)]
        public void Counts_MatchADictionary_ThroughGrowth(int seed, int distinct)
        {
            // Pages: sequential runs, strided (collide in the low bits), random up to 2^52, and
            // the extremes 0 and 2^52 - 1; every access kind.
            Random r = new Random(seed);
            ulong[] pages = new ulong[distinct];
            for (int i = 0; i < distinct; i++)
            {
                pages[i] = (i % 4) switch
                {
                    0 => (ulong)i,
                    1 => (ulong)i << 20,
                    2 => (ulong)r.NextInt64(1L << 52),
                    _ => i % 8 == 3 ? 0 : (1UL << 52) - 1 - (ulong)i,
                };
            }

            var counter = new PageCounter();
            var model = new Dictionary<ulong, long[]>();
            for (int n = 0; n < distinct * 3; n++)
            {
                ulong page = pages[r.Next(distinct)];
                int kind = r.Next(3);
                Unsafe.Add(ref counter.Counters(page), kind)++;
                if (!model.TryGetValue(page, out long[]? c))
                {
                    model[page] = c = new long[3];
                }

                c[kind]++;
                Assert.Equal(model.Count, counter.Count);
            }

            var seen = new Dictionary<ulong, long[]>();
            counter.ForEach((page, reads, writes, fetches) => seen.Add(page, new[] { reads, writes, fetches }));
            Assert.Equal(model.Count, seen.Count);
            foreach (KeyValuePair<ulong, long[]> kv in model)
            {
                Assert.Equal(kv.Value, seen[kv.Key]);
            }
        }
    }
}
