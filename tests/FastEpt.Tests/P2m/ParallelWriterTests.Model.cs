// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;

namespace FastEpt.Tests.P2mTests
{
    public sealed partial class ParallelWriterTests
    {
        private const ulong AreaBase = 1UL << 18;          // a 1G-aligned GFN: the area starts as one 1G PoD entry
        private const int Regions = 10;                     // 2 MiB regions written: 0..7 owned two per writer, 8..9 shared
        private const int ModelWriters = 4;
        private const int ModelReaders = 2;
        private const long MemoryFrames = 1L << 16;         // 256 MiB of host memory
        private const int PoolFrames = 256;
        private const int MaxReadsPerReader = 300_000;
        private static readonly ulong[] s_offsets = [0, 1, 2, 3, 100, 257, 400, 511];   // tracked GFNs per region

        private static readonly (P2mType Type, P2mAccess Access)[] s_values =
        [
            (P2mType.RamRw, P2mAccess.RWX),
            (P2mType.RamRo, P2mAccess.RX),
            (P2mType.RamLogDirty, P2mAccess.RWX),
            (P2mType.RamLogDirty, P2mAccess.RX),
            (P2mType.RamRw, P2mAccess.N),
        ];

        private enum OpKind : byte
        {
            Write,      // unconditional: map, remove or PoD, 4K or 2M
            Populate,   // GetEntry with Alloc; Val is what it returned
            Fault,      // a write fault (log-dirty, mem_access relaxing, PoD)
        }

        /// <summary>What a GFN reads as (order and suppress-#VE left out).</summary>
        private readonly record struct Val(bool Mapped, ulong Mfn, P2mType Type, P2mAccess Access)
        {
            public static Val Of(in P2mEntry e) => e.IsMapped ? new Val(true, e.Mfn, e.Type, e.Access) : default;

            public static readonly Val Pod = new(true, FastEpt.Mfn.Invalid, P2mType.PopulateOnDemand, P2mAccess.N);
        }

        private readonly record struct Op(OpKind Kind, ulong Gfn, int Order, ulong Mfn, P2mType Type, P2mAccess Access, long Start, long End)
        {
            public bool Covers(ulong g) => g >> Order == Gfn >> Order;

            public Val ValueAt(ulong g)
                => Type == P2mType.Invalid ? default
                   : Type == P2mType.PopulateOnDemand ? Val.Pod
                   : new Val(true, Mfn + (g - Gfn), Type, Access);
        }

        private readonly record struct Read(ulong Gfn, Val Value, long Start, long End);

        /// <summary>One randomized run against one domain's host p2m, its records and its verdict.</summary>
        private sealed class ModelRun : IDisposable
        {
            private readonly HostMemory _memory;
            private readonly List<Op>[] _ops = new List<Op>[ModelWriters];
            private readonly ConcurrentBag<List<Read>> _reads = new();
            private readonly HashSet<ulong> _pool = new();
            private long _clock;

            public ModelRun(PlantedWriterBug bug)
            {
                _memory = new HostMemory(MemoryFrames << 12);
                Domain = new Domain(_memory, new DomainOptions { Vcpus = ModelWriters, AltViews = 0, P2m = new P2mOptions { Support1G = true } });
                Domain.EnableLogDirty();    // on the empty p2m: nothing is marked, writes stay parallel
                Host.SetEntry(AreaBase, Mfn.Invalid, PageOrder.Size1G, P2mType.PopulateOnDemand, P2mAccess.N);
                for (int i = 0; i < PoolFrames; i++)
                {
                    ulong f = _memory.AllocateFrame();
                    _pool.Add(f);
                    Host.Pod.AddPage(f, PageOrder.Size4K);
                }

                BaselineOther = _memory.AllocatedFrameCount - Host.TableFrameCount;
                Host.PlantedBug = bug;
            }

            public Domain Domain { get; }

            public P2m Host => Domain.HostP2m;

            private long BaselineOther { get; }

            private long Tick() => Interlocked.Increment(ref _clock);

            /// <summary>Runs the threads; returns what went wrong while they ran (a thread threw or hung).</summary>
            public List<string> Run(TimeSpan duration, int seed)
            {
                var failures = new ConcurrentQueue<Exception>();
                using var stop = new CancellationTokenSource(duration);
                var bodies = new List<(string, Action)>();
                for (int t = 0; t < ModelWriters; t++)
                {
                    int thread = t;
                    _ops[t] = new List<Op>();
                    bodies.Add(($"writer {t}", () => Writer(thread, new Random(seed * 31 + thread), stop.Token)));
                }

                for (int r = 0; r < ModelReaders; r++)
                {
                    int reader = r;
                    bodies.Add(($"reader {r}", () => Reader(new Random(seed * 17 + reader), stop.Token)));
                }

                List<string> stuck = P2mConcurrencyTests.RunWithWatchdog(bodies, duration + TimeSpan.FromSeconds(30), failures, stop.Cancel);
                var problems = new List<string>();
                if (stuck.Count > 0)
                {
                    Stuck = true;
                    problems.Add("watchdog: still running: " + string.Join(", ", stuck));
                }

                problems.AddRange(failures.Select(f => f.ToString()));
                int writes = _ops.Sum(o => o?.Count ?? 0), reads = _reads.Sum(r => r.Count);
                Stats = $"{writes} writes, {reads} reads";
                return problems;
            }

            /// <summary>True when too little happened for the run to judge anything.</summary>
            public bool TooLittle => _ops.Sum(o => o?.Count ?? 0) < 400 || _reads.Sum(r => r.Count) < 2_000;

            /// <summary>A thread never stopped: the run's objects must not be disposed (they would wait for it).</summary>
            public bool Stuck { get; private set; }

            public string Stats { get; private set; } = "";

            private static ulong Tracked(Random rng, int region) => AreaBase + (ulong)region * 512 + s_offsets[rng.Next(s_offsets.Length)];

            private void Writer(int t, Random rng, CancellationToken stop)
            {
                Vcpu vcpu = Domain.Vcpus[t];
                List<Op> ops = _ops[t];
                while (!stop.IsCancellationRequested)
                {
                    int region = rng.Next(10) < 6 ? 2 * t + rng.Next(2) : 8 + rng.Next(2);
                    ulong g = Tracked(rng, region);
                    ulong region0 = g & ~511UL;
                    (P2mType type, P2mAccess access) = s_values[rng.Next(s_values.Length)];
                    int roll = rng.Next(100);
                    long start = Tick();
                    if (roll < 12)
                    {
                        Val v = Val.Of(Host.GetEntry(g, P2mQuery.Alloc));
                        ops.Add(new Op(OpKind.Populate, g, 0, v.Mfn, v.Type, v.Access, start, Tick()));
                        continue;
                    }

                    if (roll < 24)
                    {
                        _ = Domain.HandleEptViolation(vcpu, g << 12, AccessKind.Write, null);
                        ops.Add(new Op(OpKind.Fault, g, 0, 0, default, default, start, Tick()));
                        continue;
                    }

                    (ulong gfn, int order, ulong mfn) = roll switch
                    {
                        < 58 => (g, 0, 0x100 + (ulong)rng.Next((int)MemoryFrames - 0x200)),
                        < 74 => (region0, 9, (ulong)rng.Next(1, (int)(MemoryFrames >> 9)) << 9),
                        < 82 => (g, 0, Mfn.Invalid),
                        < 86 => (region0, 9, Mfn.Invalid),
                        < 94 => (g, 0, Mfn.Invalid),
                        _ => (region0, 9, Mfn.Invalid),
                    };
                    if (roll >= 74)
                    {
                        (type, access) = roll < 86 ? (P2mType.Invalid, P2mAccess.N) : (P2mType.PopulateOnDemand, P2mAccess.N);
                    }

                    Host.SetEntry(gfn, mfn, (PageOrder)order, type, access);
                    ops.Add(new Op(OpKind.Write, gfn, order, mfn, type, access, start, Tick()));
                }
            }

            private void Reader(Random rng, CancellationToken stop)
            {
                var reads = new List<Read>();
                while (!stop.IsCancellationRequested && reads.Count < MaxReadsPerReader)
                {
                    ulong g = Tracked(rng, rng.Next(Regions));
                    long start = Tick();
                    P2mEntry e = Host.GetEntry(g);
                    reads.Add(new Read(g, Val.Of(e), start, Tick()));
                }

                _reads.Add(reads);
            }

            /// <summary>Every violation of the model (empty when the run is explained by some serial order).</summary>
            public List<string> Check()
            {
                var errors = new List<string>();
                var finals = new Dictionary<ulong, Val>();
                var all = new List<Op>();
                foreach (List<Op> ops in _ops)
                {
                    all.AddRange(ops.FindAll(o => o.Kind == OpKind.Write));
                }

                var readsOf = new Dictionary<ulong, List<Read>>();
                foreach (List<Read> reads in _reads)
                {
                    foreach (Read rd in reads)
                    {
                        if (!readsOf.TryGetValue(rd.Gfn, out List<Read>? list))
                        {
                            readsOf[rd.Gfn] = list = new List<Read>();
                        }

                        list.Add(rd);
                    }
                }

                for (int r = 0; r < Regions; r++)
                {
                    foreach (ulong off in s_offsets)
                    {
                        ulong g = AreaBase + (ulong)r * 512 + off;
                        var history = new History(g, all.FindAll(o => o.Covers(g)), _pool);
                        foreach (Read rd in readsOf.GetValueOrDefault(g) ?? [])
                        {
                            if (!history.Explains(rd.Value, rd.Start, rd.End, final: false) && errors.Count < 50)
                            {
                                errors.Add($"reader saw 0x{g:X} = {rd.Value} during [{rd.Start}, {rd.End}], which no serial order of the writes explains");
                            }
                        }

                        Val now = Val.Of(Host.GetEntry(g));
                        finals[g] = now;
                        if (!history.Explains(now, long.MaxValue, long.MaxValue, final: true))
                        {
                            errors.Add($"final 0x{g:X} = {now}, not the last write of any serial order consistent with the threads");
                        }
                    }
                }

                CheckCounters(errors, finals);
                return errors;
            }

            // What a write fault can make of a written value: a log-dirty page becomes RamRw, an
            // access without write is relaxed to RWX (mem_access with no listener).
            internal static bool IsFaultDerived(Val written, Val v)
                => written.Mapped && v.Mapped && written.Mfn == v.Mfn && written.Mfn != Mfn.Invalid
                   && (v.Type == written.Type || (written.Type == P2mType.RamLogDirty && v.Type == P2mType.RamRw))
                   && (v.Access == written.Access || v.Access == P2mAccess.RWX);

            private void CheckCounters(List<string> errors, Dictionary<ulong, Val> finals)
            {
                long pod = 0;
                var mapped = new HashSet<ulong>();
                ulong last = AreaBase + (1UL << 18);
                for (ulong g = AreaBase; g < last;)
                {
                    P2mEntry e = Host.GetEntry(g);
                    ulong n = 1UL << e.Order;
                    if (e.IsMapped && e.Type == P2mType.PopulateOnDemand)
                    {
                        pod += (long)n;
                    }
                    else if (e.IsMapped && e.Order == 0 && _pool.Contains(e.Mfn) && !mapped.Add(e.Mfn))
                    {
                        errors.Add($"pool frame 0x{e.Mfn:X} is mapped at two GFNs (a populate ran twice)");
                    }

                    g = (g & ~(n - 1)) + n;
                }

                if (pod != Host.PodEntryCount)
                {
                    errors.Add($"PodEntryCount {Host.PodEntryCount}, the tables hold {pod} PoD GFNs");
                }

                long tables = CountTables(Host.RootMfn, Host.Levels);
                if (tables != Host.TableFrameCount)
                {
                    errors.Add($"TableFrameCount {Host.TableFrameCount}, {tables} tables are reachable");
                }

                if (P2mConcurrencyTests.ReclaimUntilEmpty(Host) == 0 && _memory.AllocatedFrameCount - Host.TableFrameCount != BaselineOther)
                {
                    errors.Add($"frames leaked or lost: {_memory.AllocatedFrameCount - Host.TableFrameCount} allocated beside the tables, {BaselineOther} expected");
                }

                // The dirty log: a GFN whose final value is a log-dirty write made RamRw by a fault
                // was marked dirty first (read before the harvest, which re-marks the p2m).
                var dirty = new HashSet<ulong>(Domain.HarvestDirty());
                foreach ((ulong g, Val v) in finals)
                {
                    bool wasLogDirty = Array.Exists(_ops, ops => ops.Exists(o => o.Kind == OpKind.Write && o.Covers(g) && o.Type == P2mType.RamLogDirty && o.ValueAt(g).Mfn == v.Mfn));
                    bool writtenRw = Array.Exists(_ops, ops => ops.Exists(o => o.Kind == OpKind.Write && o.Covers(g) && o.Type == P2mType.RamRw && o.ValueAt(g).Mfn == v.Mfn));
                    if (v.Mapped && v.Type == P2mType.RamRw && wasLogDirty && !writtenRw && !_pool.Contains(v.Mfn) && !dirty.Contains(g))
                    {
                        errors.Add($"0x{g:X} became RamRw by a log-dirty fault but is not in the dirty log");
                    }
                }
            }

            private long CountTables(ulong table, int level)
            {
                long n = 1;
                if (level == 1)
                {
                    return n;
                }

                for (ulong i = 0; i < 512; i++)
                {
                    ulong e = _memory.ReadUInt64((table << 12) + i * 8);
                    if ((e & 7) != 0 && (e & 0x80) == 0)
                    {
                        n += CountTables((e & 0x000F_FFFF_FFFF_F000UL) >> 12, level - 1);
                    }
                }

                return n;
            }

            public void Dispose()
            {
                if (Stuck)
                {
                    return;     // a hung thread holds locks; disposing would hang the test run too
                }

                Domain.Dispose();
                _memory.Dispose();
            }
        }
    }
}
