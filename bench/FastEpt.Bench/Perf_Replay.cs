// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.IO;
using BenchmarkDotNet.Attributes;
using FastEpt.Cli.Replay;
using FastEpt.Cli.Traces;

namespace FastEpt.Bench
{
    /// <summary>
    /// Trace replay throughput of the <c>fastept</c> tool, in time per access: parsing alone
    /// against parsing plus translating, for a lackey text trace and the same accesses in the
    /// binary format. The replay goals (docs/benchmarks.md): binary replay at least 50 M accesses/s, lackey text at
    /// least 5 M accesses/s on this machine class.
    /// </summary>
    /// <remarks>
    /// The trace (<see cref="Accesses"/> accesses, written once to a temporary folder) is
    /// program-shaped: 4-byte instruction fetches that run sequentially and jump every 1,024
    /// accesses, and a load or store of 8 bytes after every third fetch on average, three quarters
    /// of them within 8 KiB of a stack pointer and the rest over 16 MiB of heap. The replay guest
    /// is 64 MiB of 4K pages (built in about a millisecond, so setup does not dominate) with the
    /// default 256-entry TLB, scalar translation.
    /// </remarks>
    [MemoryDiagnoser]
    [BenchmarkCategory("Replay")]
    public class Perf_Replay
    {
        /// <summary>Accesses in the trace (each invocation replays all of them).</summary>
        public const int Accesses = 2_000_000;

        /// <summary>The trace and guest in a line, for the goals table.</summary>
        public const string Describe = "a program-shaped trace of fetches, stack and heap accesses; 64 MiB guest of 4K pages, 256-entry TLB, scalar";

        private string _dir = null!;
        private string _lackey = null!;
        private string _binary = null!;
        // Parsing alone reads in chunks of the replay engine's size (16 Ki accesses), so both
        // decode into a buffer of the same, cache-sized footprint.
        private readonly TraceAccess[] _buffer = new TraceAccess[1 << 14];

        /// <summary>Writes the two traces.</summary>
        [GlobalSetup]
        public void Setup()
        {
            _dir = Path.Combine(Path.GetTempPath(), "fastept-bench-replay-" + Environment.ProcessId);
            Directory.CreateDirectory(_dir);
            _lackey = Path.Combine(_dir, "trace.lackey");
            _binary = Path.Combine(_dir, "trace.fept");
            var rng = new Random(20261122);
            using (var w = new StreamWriter(_lackey))
            {
                ulong pc = 0x400000, sp = 0x7ff000000, heap = 0x10000000;
                for (int i = 0; i < Accesses;)
                {
                    pc += 4;
                    w.Write($"I  {pc:x8},4\n");
                    i++;
                    if (i < Accesses && rng.Next(3) == 0)
                    {
                        ulong a = rng.Next(4) == 0 ? heap + (ulong)rng.Next(1 << 24) : sp - (ulong)rng.Next(8192);
                        w.Write(rng.Next(3) == 0 ? $" S {a:x8},8\n" : $" L {a:x8},8\n");
                        i++;
                    }

                    if ((i & 1023) == 0)
                    {
                        pc = 0x400000 + (ulong)rng.Next(1 << 20);
                    }
                }
            }

            using (ITraceReader r = TraceReaders.Open(_lackey, TraceFormat.Lackey))
            using (var w = new BinaryTraceWriter(File.Create(_binary)))
            {
                int n;
                while ((n = r.Read(_buffer)) > 0)
                {
                    w.Write(_buffer.AsSpan(0, n));
                }
            }

            if (Parse(_lackey, TraceFormat.Lackey) != Accesses || Parse(_binary, TraceFormat.Binary) != Accesses
                || Replay(_binary, TraceFormat.Binary) != Accesses || Replay(_lackey, TraceFormat.Lackey) != Accesses)
            {
                throw new InvalidOperationException("The replay benchmark's traces do not hold the expected accesses.");
            }
        }

        /// <summary>Removes the traces.</summary>
        [GlobalCleanup]
        public void Cleanup() => Directory.Delete(_dir, recursive: true);

        /// <summary>Reads the lackey text trace (no translation).</summary>
        [Benchmark(OperationsPerInvoke = Accesses)]
        public long ParseLackey() => Parse(_lackey, TraceFormat.Lackey);

        /// <summary>Reads the binary trace (no translation).</summary>
        [Benchmark(OperationsPerInvoke = Accesses)]
        public long ParseBinary() => Parse(_binary, TraceFormat.Binary);

        /// <summary>Replays the lackey text trace: parse and translate, with the report's statistics.</summary>
        [Benchmark(OperationsPerInvoke = Accesses)]
        public long ReplayLackey() => Replay(_lackey, TraceFormat.Lackey);

        /// <summary>Replays the binary trace: parse and translate, with the report's statistics.</summary>
        [Benchmark(OperationsPerInvoke = Accesses, Baseline = true)]
        public long ReplayBinary() => Replay(_binary, TraceFormat.Binary);

        private long Parse(string path, TraceFormat format)
        {
            long total = 0;
            using ITraceReader r = TraceReaders.Open(path, format);
            int n;
            while ((n = r.Read(_buffer)) > 0)
            {
                total += n;
            }

            return total;
        }

        private static long Replay(string path, TraceFormat format)
        {
            using ITraceReader r = TraceReaders.Open(path, format);
            return Replayer.Run(r, new ReplayOptions { GuestBytes = 64L << 20 }, null, default).Accesses;
        }
    }
}
