// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Text;

namespace FastEpt.Bench
{
    // The per-mode 2D-walk group of the goals table (docs/benchmarks.md): Vcpu.TranslateLinear in
    // each paging mode (docs/model/guest-paging.md §8.2) over the same random linear 4K pages and
    // data frames (PagingModeGuest), against the 1D P2m.Translate of the same final GPAs, timed
    // interleaved. Informational rows: no target.
    internal static partial class Goals
    {
        private const int PagingOps = 256;

        private static readonly string[] PagingMethods = ["Walk1D", nameof(GuestPagingMode.Paging32), nameof(GuestPagingMode.Pae),
                                                          nameof(GuestPagingMode.LongMode4), nameof(GuestPagingMode.LongMode5)];

        private sealed record PagingGroup(Dictionary<string, double> Medians, double Seconds)
        {
            public void AppendTimings(StringBuilder timings)
                => AppendGroup(timings, $"2D walks per paging mode ({PagingModeGuest.Pages} random linear 4K pages below 1 GiB, 4K EPT pages): medians over {Rounds} rounds of {CallsPerRound} x {PagingOps} walks per method, interleaved ({Seconds.ToString("F1", CultureInfo.InvariantCulture)} s):",
                               "walk", "walks", PagingMethods, Medians, "Walk1D");

            public List<GoalRow> Rows()
                => PagingMethods.Skip(1).Select(m => InfoRow(n => Medians.TryGetValue(n, out double v) ? v : null, null,
                                                               $"2D walk per mode, {m} (4K guest and EPT pages): TranslateLinear / 1D scalar Translate, time per walk", m, "Walk1D")).ToList();
        }

        /// <summary>The per-mode 2D-walk group alone (<c>--paging</c>): prints its timings and rows; returns 0.</summary>
        public static int RunPagingOnly()
        {
            Console.WriteLine();
            Console.WriteLine("==> Goals: the per-mode 2D-walk group alone");
            PagingGroup group = RunPaging();
            var timings = new StringBuilder();
            group.AppendTimings(timings);
            Console.WriteLine(timings.ToString());
            Console.WriteLine(FormatTable(group.Rows(), withBdn: false));
            return 0;
        }

        private static PagingGroup RunPaging()
        {
            using PagingModeGuest guest = new(seed: 0x2D);
            P2m p2m = guest.Domain.HostP2m;

            // Every mode must reach the same frames, or the rows compare different work.
            foreach (string m in PagingMethods.Skip(1))
            {
                Vcpu cpu = guest.Cpu(Enum.Parse<GuestPagingMode>(m));
                for (int i = 0; i < PagingModeGuest.Pages; i++)
                {
                    GuestTranslation t = cpu.TranslateLinear(guest.Glas[i], PageFaultErrorCode.None);
                    if (t.Status != GuestStatus.Ok || t.Gpa != guest.Gpas[i])
                    {
                        throw new InvalidOperationException($"{m}: 0x{guest.Glas[i]:X} gave {t}, expected GPA 0x{guest.Gpas[i]:X}");
                    }
                }
            }

            Func<ulong> Walk(GuestPagingMode mode)
            {
                Vcpu cpu = guest.Cpu(mode);
                ulong[] glas = guest.Glas;
                int next = 0;
                return () =>
                {
                    ulong s = 0;
                    for (int k = 0; k < PagingOps; k++)
                    {
                        s += cpu.TranslateLinear(glas[(next + k) & (PagingModeGuest.Pages - 1)], PageFaultErrorCode.None).Hpa;
                    }

                    next = (next + PagingOps) & (PagingModeGuest.Pages - 1);
                    return s;
                };
            }

            Func<ulong> Walk1D()
            {
                ulong[] gpas = guest.Gpas;
                int next = 0;
                return () =>
                {
                    ulong s = 0;
                    for (int k = 0; k < PagingOps; k++)
                    {
                        s += p2m.Translate(gpas[(next + k) & (PagingModeGuest.Pages - 1)], AccessKind.Read).Hpa;
                    }

                    next = (next + PagingOps) & (PagingModeGuest.Pages - 1);
                    return s;
                };
            }

            List<(string, Func<ulong>)> group = [("Walk1D", Walk1D())];
            group.AddRange(PagingMethods.Skip(1).Select(m => (m, Walk(Enum.Parse<GuestPagingMode>(m)))));
            ulong sink = 0;
            Stopwatch watch = Stopwatch.StartNew();
            Dictionary<string, double> medians = Interleave(group, PagingOps, ref sink);
            Console.WriteLine($"(paging checksum {sink:X})");
            return new PagingGroup(medians, watch.Elapsed.TotalSeconds);
        }
    }
}
