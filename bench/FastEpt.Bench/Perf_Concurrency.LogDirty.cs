// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Diagnostics;

namespace FastEpt.Bench
{
    public partial class Perf_Concurrency
    {
        /// <summary>
        /// The log-dirty fault scenario: a <see cref="Domain"/> with two vCPUs and no altp2m views,
        /// <see cref="Frames"/> pages of RAM in 4K pages, in log-dirty mode. Each fault is what an
        /// embedder's vCPU loop does for a guest write to a log-dirty page: the write's walk
        /// (<see cref="P2m.Translate"/>, a violation), <see cref="Domain.HandleEptViolation"/>
        /// (marks the page dirty and makes it RamRw again) and the re-executed write's walk,
        /// which must now succeed.
        /// </summary>
        /// <remarks>
        /// Worker <c>t</c> of <c>n</c> faults on its own slice of the GFNs, in order, on vCPU
        /// <c>t</c>. <see cref="Rearm"/> (untimed, between runs) harvests the dirty log, which
        /// makes every page log-dirty again lazily, and resolves every marked path, so the timed
        /// faults are EPT violations only.
        /// </remarks>
        internal sealed class LogDirtyScenario : IDisposable
        {
            /// <summary>Guest RAM in 4K frames (4 GiB).</summary>
            public const long Frames = 1L << 20;

            private const long TableReserveBytes = 64L << 20;

            private readonly HostMemory _memory;
            private readonly Domain _domain;

            private LogDirtyScenario(HostMemory memory, Domain domain)
            {
                _memory = memory;
                _domain = domain;
            }

            /// <summary>One line for reports.</summary>
            public static string Describe =>
                $"a domain with 2 vCPUs and {Frames >> 18} GiB of RAM in 4K pages, log-dirty mode on; "
                + "each fault is the write's walk (a violation), Domain.HandleEptViolation and the re-executed write's walk; "
                + "worker t of n faults on its own 1/n of the GFNs (its own 2 MiB regions), in order";

            /// <summary>Builds and maps the domain and turns log-dirty mode on (well under a second).</summary>
            public static LogDirtyScenario Create()
            {
                var memory = new HostMemory((Frames << DefaultGuest.PageBits) + TableReserveBytes);
                Domain? domain = null;
                try
                {
                    domain = new Domain(memory, new DomainOptions { Vcpus = 2, AltViews = 0 });
                    ulong first = memory.AllocateFrames(Frames);
                    for (ulong gfn = 0; gfn < (ulong)Frames; gfn++)
                    {
                        domain.HostP2m.SetEntry(gfn, first + gfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                    }

                    domain.EnableLogDirty();
                    var scenario = new LogDirtyScenario(memory, domain);
                    scenario.Rearm();
                    return scenario;
                }
                catch
                {
                    domain?.Dispose();
                    memory.Dispose();
                    throw;
                }
            }

            /// <summary>Makes every page log-dirty again and resolves every marked path (untimed).</summary>
            public void Rearm()
            {
                if (_domain.DirtyPageCount != 0)
                {
                    _domain.HarvestDirty();
                }

                for (ulong gfn = 0; gfn < (ulong)Frames; gfn += 512)
                {
                    _domain.HostP2m.ResolveMisconfig(gfn);
                }
            }

            /// <summary>
            /// Re-arms, then runs <paramref name="workers"/> threads, each faulting on
            /// <paramref name="pagesPerWorker"/> pages of its own slice; returns the faults handled
            /// per second: all the workers' faults over the time from their release to the last
            /// one's end. Checks that the dirty log holds exactly the pages faulted on.
            /// </summary>
            public double Run(int workers, long pagesPerWorker)
            {
                long slice = Frames / workers;
                if (pagesPerWorker > slice)
                {
                    throw new ArgumentOutOfRangeException(nameof(pagesPerWorker), pagesPerWorker, $"A worker's slice holds {slice} pages.");
                }

                Rearm();
                var loops = new List<BackgroundLoop>(workers);
                try
                {
                    for (int t = 0; t < workers; t++)
                    {
                        int worker = t;
                        loops.Add(new BackgroundLoop($"log-dirty worker {t}",
                                                     loop => Faults(worker, (ulong)(worker * slice), (ulong)pagesPerWorker, () => loop.StopRequested)));
                    }

                    foreach (BackgroundLoop loop in loops)
                    {
                        loop.WaitReady();
                    }

                    long start = Stopwatch.GetTimestamp();
                    foreach (BackgroundLoop loop in loops)
                    {
                        loop.Go();
                    }

                    long faults = 0;
                    foreach (BackgroundLoop loop in loops)
                    {
                        faults += loop.Finish().Count;
                    }

                    double seconds = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
                    if (faults != workers * pagesPerWorker || _domain.DirtyPageCount != faults)
                    {
                        throw new InvalidOperationException($"{faults} faults handled, {_domain.DirtyPageCount} pages in the dirty log; expected {workers * pagesPerWorker} of each.");
                    }

                    return faults / seconds;
                }
                finally
                {
                    foreach (BackgroundLoop loop in loops)
                    {
                        loop.Dispose();
                    }
                }
            }

            /// <summary>Disposes the domain, then its memory.</summary>
            public void Dispose()
            {
                _domain.Dispose();
                _memory.Dispose();
            }

            // Faults on [first, first + count) in order until stop(); returns the faults handled.
            private long Faults(int vcpu, ulong first, ulong count, Func<bool> stop)
            {
                Domain d = _domain;
                P2m p2m = d.HostP2m;
                Vcpu cpu = d.Vcpus[vcpu];
                ulong gfn = first;
                while (gfn < first + count && ((gfn & 15) != 0 || !stop()))
                {
                    ulong gpa = (gfn << DefaultGuest.PageBits) | 0x40;
                    EptTranslation t = p2m.Translate(gpa, AccessKind.Write);
                    if (t.Status == EptStatus.Misconfig)
                    {
                        // Not expected after Rearm; handled as an embedder would, and not counted.
                        Expect(d.HandleEptMisconfig(cpu, gpa), gfn);
                        continue;
                    }

                    if (t.Status != EptStatus.Violation)
                    {
                        throw new InvalidOperationException($"GFN 0x{gfn:X}: a write gave {t.Status}; the page should be log-dirty.");
                    }

                    Expect(d.HandleEptViolation(cpu, gpa, AccessKind.Write, gla: null), gfn);
                    if (p2m.Translate(gpa, AccessKind.Write).Status != EptStatus.Ok)
                    {
                        throw new InvalidOperationException($"GFN 0x{gfn:X}: the write still faults after its log-dirty fault was handled.");
                    }

                    gfn++;
                }

                return (long)(gfn - first);
            }

            private static void Expect(FaultOutcome outcome, ulong gfn)
            {
                if (outcome != FaultOutcome.Retry)
                {
                    throw new InvalidOperationException($"GFN 0x{gfn:X}: the fault handler answered {outcome}, not Retry.");
                }
            }
        }
    }
}
