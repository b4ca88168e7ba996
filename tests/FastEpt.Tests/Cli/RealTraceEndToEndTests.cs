// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics;
using System.IO;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace FastEpt.Tests.Cli
{
    /// <summary>
    /// A real memory trace, recorded now with valgrind's lackey (./build.sh test installs valgrind
    /// when missing), replayed end to end through <c>fastept replay</c>; the report's totals are
    /// checked against counts taken from the raw trace by a separate, plain parser here.
    /// </summary>
    public sealed class RealTraceEndToEndTests
    {
        private static readonly Regex s_access = new(@"^(?:I|\s([LSM]))\s+([0-9a-fA-F]+),(\d+)\s*$", RegexOptions.CultureInvariant);

        [Fact]
        public void RecordedLackeyTrace_ReplayReportTotals_MatchAnIndependentCount()
        {
            string dir = Path.Combine(Path.GetTempPath(), "fastept-e2e-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            try
            {
                string trace = OperatingSystem.IsLinux() ? Record(dir) : Path.Combine(AppContext.BaseDirectory, "Samples", "sample.lackey");
                (long reads, long writes, long fetches, long readBytes, long writeBytes, long fetchBytes, int pages) = Count(trace);
                Assert.True(reads + writes + fetches > 10_000, $"a real program makes many accesses; the trace had {reads + writes + fetches}");

                var output = new StringWriter();
                var error = new StringWriter();
                string reportDir = Path.Combine(dir, "report");
                int rc = FastEpt.Cli.Program.Run(["replay", trace, "--report", reportDir], output, error);
                Assert.True(rc == 0, $"fastept replay exited {rc}: {error}");

                using JsonDocument json = JsonDocument.Parse(File.ReadAllText(Path.Combine(reportDir, "report.json")));
                JsonElement root = json.RootElement;
                Assert.Equal(reads + writes + fetches, root.GetProperty("Accesses").GetInt64());
                Assert.Equal(readBytes + writeBytes + fetchBytes, root.GetProperty("Bytes").GetInt64());
                var kinds = root.GetProperty("Kinds").EnumerateArray().ToDictionary(k => k.GetProperty("Kind").GetString()!, k => (k.GetProperty("Accesses").GetInt64(), k.GetProperty("Bytes").GetInt64()));
                Assert.Equal((reads, readBytes), kinds["Read"]);
                Assert.Equal((writes, writeBytes), kinds["Write"]);
                Assert.Equal((fetches, fetchBytes), kinds["Fetch"]);
                Assert.Equal(pages, root.GetProperty("UniquePages").GetInt32());
                Assert.Equal(0, root.GetProperty("MalformedCount").GetInt64());
                Assert.Equal(root.GetProperty("Accesses").GetInt64(), root.GetProperty("TlbHits").GetInt64() + root.GetProperty("TlbMisses").GetInt64());
                Assert.True(File.Exists(Path.Combine(reportDir, "heatmap.svg")) && File.Exists(Path.Combine(reportDir, "working-set.svg")));
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        }

        // valgrind --tool=lackey --trace-mem=yes on a real program; the trace goes to the log file.
        private static string Record(string dir)
        {
            string trace = Path.Combine(dir, "true.lackey");
            var start = new ProcessStartInfo("valgrind") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (string a in new[] { "--tool=lackey", "--trace-mem=yes", "--log-file=" + trace, "/bin/true" })
            {
                start.ArgumentList.Add(a);
            }

            Process? p = null;
            try
            {
                p = Process.Start(start);
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                Assert.Fail($"valgrind is needed to record a real trace ({e.Message}); ./build.sh test installs it (apt-get install valgrind).");
            }

            using (p)
            {
                Assert.True(p!.WaitForExit(120_000), "valgrind did not finish in 2 minutes");
                Assert.True(p.ExitCode == 0, $"valgrind exited {p.ExitCode}: {p.StandardError.ReadToEnd()}");
            }

            return trace;
        }

        // A plain count of the lackey lines: I = fetch, L = load, S = store, M = load and store.
        private static (long, long, long, long, long, long, int) Count(string path)
        {
            long reads = 0, writes = 0, fetches = 0, readBytes = 0, writeBytes = 0, fetchBytes = 0;
            var pages = new HashSet<ulong>();
            foreach (string line in File.ReadLines(path))
            {
                Match m = s_access.Match(line);
                if (!m.Success)
                {
                    Assert.StartsWith("==", line);       // only valgrind's banner lines are not accesses
                    continue;
                }

                ulong address = Convert.ToUInt64(m.Groups[2].Value, 16);
                long size = long.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture);
                pages.Add(address >> 12);
                switch (m.Groups[1].Success ? m.Groups[1].Value : "I")
                {
                    case "I":
                        fetches++;
                        fetchBytes += size;
                        break;
                    case "L":
                        reads++;
                        readBytes += size;
                        break;
                    case "S":
                        writes++;
                        writeBytes += size;
                        break;
                    default:
                        reads++;
                        readBytes += size;
                        writes++;
                        writeBytes += size;
                        break;
                }
            }

            return (reads, writes, fetches, readBytes, writeBytes, fetchBytes, pages.Count);
        }
    }
}
