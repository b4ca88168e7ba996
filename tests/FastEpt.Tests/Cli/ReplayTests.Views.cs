// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Cli.Replay;
using FastEpt.Cli.Traces;

namespace FastEpt.Tests.Cli
{
    public sealed partial class ReplayTests
    {
        [Fact]
        public void Views_DealAccessesRoundRobin()
        {
            TraceAccess[] trace = MakeTrace(10_001);
            ReplayReport report = Run(trace, new ReplayOptions { GuestBytes = Guest, Views = 3, TlbEntries = 64 });
            Assert.Equal(3, report.Views);
            Assert.Equal(new[] { 0, 1, 2, 3 }, report.ViewStats.Select(v => v.View));
            Assert.Equal(new long[] { 2501, 2500, 2500, 2500 }, report.ViewStats.Select(v => v.Accesses));
            foreach (ViewStats v in report.ViewStats)
            {
                // A faulting access walks again after the lazy copy: one extra lookup per fault.
                Assert.Equal(v.Accesses + v.Violations, v.TlbHits + v.TlbMisses);
                Assert.Equal(0, v.Unresolved);
            }

            Assert.Equal(0, report.ViewStats[0].Violations);
            Assert.Equal(report.TlbHits, report.ViewStats.Sum(v => v.TlbHits));
            Assert.Equal(trace.Length, report.WalkDepth.Sum(d => d.Translations));

            ReplayReport batched = Run(trace, new ReplayOptions { GuestBytes = Guest, Views = 2, TlbEntries = 0, Batch = 32 });
            Assert.Equal(new long[] { 3334, 3334, 3333 }, batched.ViewStats.Select(v => v.Accesses));
            Assert.Equal(report.WalkDepth, batched.WalkDepth);
        }

        // Reference model of the replay's altp2m views: the host maps every page RWX; alternate
        // view v starts empty; an access missing from the view is a not-present violation that
        // copies the host mapping (its whole page, 4K or 2M) with the view's default access; an
        // access the entry's EPT rights forbid is a violation (not-present when the entry grants
        // nothing) that the domain, with no mem_access listener, resolves by relaxing that 4K page
        // to RWX, or by promoting rx2rw to rw on a write. Faults are counted per view and kind.
        // With batching, accesses are translated (and fault) in the order the replay's
        // per-(view, kind) queues are flushed: when full, and all at the end in queue order.
        private static (long[,] NotPresent, long[,] Rights) ModelViewFaults(TraceAccess[] trace, int views, P2mAccess viewAccess, ulong blockPages, int batch)
        {
            const ulong GuestPages = (ulong)(Guest >> 12);
            var order = new List<int>(trace.Length);
            if (batch == 0)
            {
                order.AddRange(Enumerable.Range(0, trace.Length));
            }
            else
            {
                var queues = Enumerable.Range(0, (views + 1) * 3).Select(_ => new List<int>()).ToArray();
                for (int j = 0; j < trace.Length; j++)
                {
                    List<int> q = queues[(j % (views + 1) * 3) + (int)trace[j].Kind];
                    q.Add(j);
                    if (q.Count == batch)
                    {
                        order.AddRange(q);
                        q.Clear();
                    }
                }

                foreach (List<int> q in queues)
                {
                    order.AddRange(q);
                }
            }

            var state = new Dictionary<(int View, ulong Gfn), P2mAccess>();
            long[,] notPresent = new long[views + 1, 3];
            long[,] rights = new long[views + 1, 3];
            foreach (int j in order)
            {
                int v = j % (views + 1);
                if (v == 0)
                {
                    continue;
                }

                int k = (int)trace[j].Kind;
                ulong gfn = (trace[j].Address >> 12) % GuestPages;
                while (true)
                {
                    if (!state.TryGetValue((v, gfn), out P2mAccess access))
                    {
                        notPresent[v, k]++;
                        ulong first = gfn / blockPages * blockPages;
                        for (ulong p = first; p < first + blockPages; p++)
                        {
                            state[(v, p)] = viewAccess;
                        }

                        continue;
                    }

                    int eptRights = access switch
                    {
                        P2mAccess.RX2RW => 5,
                        P2mAccess.N2RWX => 0,
                        P2mAccess.R_PW => 1,
                        _ => (int)access,
                    };
                    if ((eptRights & (1 << k)) != 0)
                    {
                        break;
                    }

                    if (eptRights == 0)
                    {
                        notPresent[v, k]++;
                    }
                    else
                    {
                        rights[v, k]++;
                    }

                    state[(v, gfn)] = access == P2mAccess.RX2RW && k == (int)TraceKind.Write ? P2mAccess.RW : P2mAccess.RWX;
                }
            }

            return (notPresent, rights);
        }

        [Theory]
        [InlineData(PageMode.Size4K, P2mAccess.RWX, 64, 0)]
        [InlineData(PageMode.Size4K, P2mAccess.RX, 64, 0)]
        [InlineData(PageMode.Size4K, P2mAccess.RX, 0, 0)]
        [InlineData(PageMode.Size4K, P2mAccess.RX, 0, 32)]
        [InlineData(PageMode.Size4K, P2mAccess.RX, 16, 512)]
        [InlineData(PageMode.Size4K, P2mAccess.R, 16, 0)]
        [InlineData(PageMode.Size4K, P2mAccess.RW, 256, 0)]
        [InlineData(PageMode.Size4K, P2mAccess.N, 64, 7)]
        [InlineData(PageMode.Size4K, P2mAccess.RX2RW, 64, 0)]
        [InlineData(PageMode.Size4K, P2mAccess.N2RWX, 0, 0)]
        [InlineData(PageMode.Size2M, P2mAccess.RWX, 64, 0)]
        [InlineData(PageMode.Size2M, P2mAccess.RWX, 0, 16)]
        [InlineData(PageMode.Size2M, P2mAccess.RX, 64, 0)]
        public void Views_FaultsMatchTheAltp2mModel(PageMode pages, P2mAccess viewAccess, int tlb, int batch)
        {
            const int Views = 2;
            TraceAccess[] trace = MakeTrace(20_000, seed: 11);
            ReplayReport report = Run(trace, new ReplayOptions { GuestBytes = Guest, Pages = pages, Views = Views, ViewAccess = viewAccess, TlbEntries = tlb, Batch = batch }, chunk: 999);
            (long[,] notPresent, long[,] rights) = ModelViewFaults(trace, Views, viewAccess, pages == PageMode.Size2M ? 512UL : 1UL, batch);

            Assert.Equal(viewAccess, report.ViewAccess);
            Assert.Equal(0, report.UnresolvedFaults);
            Assert.Equal(0, report.Misconfigs);
            for (int v = 0; v <= Views; v++)
            {
                ViewStats s = report.ViewStats[v];
                Assert.Equal(Enumerable.Range(0, 3).Sum(k => notPresent[v, k]), s.NotPresent);
                Assert.Equal(Enumerable.Range(0, 3).Sum(k => rights[v, k]), s.Rights);
                Assert.Equal(0, s.Unresolved);
            }

            for (int k = 0; k < 3; k++)
            {
                KindStats ks = report.Kinds[k];
                Assert.Equal(Enumerable.Range(0, Views + 1).Sum(v => notPresent[v, k]), ks.NotPresent);
                Assert.Equal(Enumerable.Range(0, Views + 1).Sum(v => rights[v, k]), ks.Rights);
            }

            Assert.True(report.ViewStats[1].NotPresent > 0, "the views start empty");
            Assert.Equal(report.Kinds.Sum(k => k.Violations), report.Violations);
            // Every access ends translated, whatever it faulted on the way.
            Assert.Equal(trace.Length, report.WalkDepth.Sum(d => d.Translations));
        }

        [Fact]
        public void Views_BatchedAndScalarReplaysAgree_OnMixedPages()
        {
            // With RWX views every fault is the first touch of a host page (2M or 4K, by the mixed
            // layout) in a view: the per-view totals do not depend on the order batching imposes.
            TraceAccess[] trace = MakeTrace(15_000, seed: 5);
            var scalar = Run(trace, new ReplayOptions { GuestBytes = Guest, Pages = PageMode.Mixed, Views = 3, TlbEntries = 32 });
            var batched = Run(trace, new ReplayOptions { GuestBytes = Guest, Pages = PageMode.Mixed, Views = 3, TlbEntries = 0, Batch = 100 }, chunk: 4096);
            Assert.Equal(scalar.Kinds.Select(k => k.Accesses), batched.Kinds.Select(k => k.Accesses));
            Assert.Equal(scalar.WalkDepth, batched.WalkDepth);
            Assert.Equal(scalar.ViewStats.Select(v => (v.Accesses, v.NotPresent, v.Rights, v.Unresolved)), batched.ViewStats.Select(v => (v.Accesses, v.NotPresent, v.Rights, v.Unresolved)));
            Assert.Equal(0, scalar.ViewStats[1].Rights);
            // Fewer faults than distinct pages: some pages came in with a 2M copy.
            long distinctPages = trace.Select(a => (a.Address >> 12) % (ulong)(Guest >> 12)).Distinct().LongCount();
            Assert.InRange(scalar.ViewStats[1].NotPresent, 1, distinctPages - 1);
        }

        [Fact]
        public void SingleView_HasOneViewRow()
        {
            TraceAccess[] trace = MakeTrace(100);
            ReplayReport report = Run(trace, new ReplayOptions { GuestBytes = Guest });
            ViewStats v = Assert.Single(report.ViewStats);
            Assert.Equal(100, v.Accesses);
            Assert.Equal(100, v.TlbHits + v.TlbMisses);
        }
    }
}
