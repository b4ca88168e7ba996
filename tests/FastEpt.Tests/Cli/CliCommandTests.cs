// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.IO;
using FastEpt.Cli;
using FastEpt.Cli.Commands;
using FastEpt.Cli.Traces;

namespace FastEpt.Tests.Cli
{
    public sealed class CliCommandTests : IDisposable
    {
        private readonly string _dir = Path.Combine(Path.GetTempPath(), "fastept-cli-tests-" + Guid.NewGuid().ToString("N"));

        public CliCommandTests() => Directory.CreateDirectory(_dir);

        public void Dispose() => Directory.Delete(_dir, recursive: true);

        private static (int Code, string Out, string Err) Run(params string[] args)
        {
            var output = new StringWriter();
            var error = new StringWriter();
            int code = Program.Run(args, output, error);
            return (code, output.ToString(), error.ToString());
        }

        [Fact]
        public void Convert_SampleToBinary_EndToEnd()
        {
            string output = Path.Combine(_dir, "sample.fept");
            (int code, string stdout, string stderr) = Run("convert", TraceBinaryTests.SamplePath, output);
            Assert.Equal(0, code);
            Assert.Equal(string.Empty, stderr);
            Assert.Contains("(lackey)", stdout);
            Assert.Contains("lines read:       20,000", stdout);
            Assert.Contains("malformed:        0", stdout);

            List<TraceAccess> expected;
            using (ITraceReader lackey = TraceReaders.Open(TraceBinaryTests.SamplePath))
            {
                expected = TraceReaderTests.ReadAll(lackey);
            }

            Assert.Contains($"accesses written: {expected.Count:N0}", stdout);
            using ITraceReader binary = TraceReaders.Open(output);
            Assert.IsType<BinaryTraceReader>(binary);
            Assert.Equal(expected, TraceReaderTests.ReadAll(binary));
        }

        [Fact]
        public void Convert_DinWithMalformedLines_ReportsThem()
        {
            string input = Path.Combine(_dir, "t.din");
            File.WriteAllText(input, "0 1000\n9 bad\n1 2000 8\n");
            (int code, string stdout, _) = Run("convert", input, Path.Combine(_dir, "t.fept"), "--format", "din");
            Assert.Equal(0, code);
            Assert.Contains("accesses written: 2", stdout);
            Assert.Contains("malformed:        1", stdout);
            Assert.Contains("line 2:", stdout);
        }

        [Fact]
        public void Convert_MissingInput_IsExitCode1WithoutStackTrace()
        {
            (int code, string stdout, string stderr) = Run("convert", Path.Combine(_dir, "nope.lackey"), Path.Combine(_dir, "out.fept"));
            Assert.Equal(1, code);
            Assert.Contains("not found", stderr);
            Assert.DoesNotContain("   at ", stderr);
            Assert.Equal(string.Empty, stdout);
        }

        [Fact]
        public void Convert_OutputInMissingDirectory_IsExitCode1()
        {
            (int code, _, string stderr) = Run("convert", TraceBinaryTests.SamplePath, Path.Combine(_dir, "no", "such", "dir", "out.fept"));
            Assert.Equal(1, code);
            Assert.StartsWith("fastept: ", stderr);
            Assert.DoesNotContain("   at ", stderr);
        }

        [Theory]
        [InlineData("convert")]
        [InlineData("convert", "a")]
        [InlineData("convert", "a", "b", "--format", "xml")]
        [InlineData("frobnicate")]
        [InlineData("replay", "t", "--guest", "4X")]
        [InlineData("replay", "t", "--guest", "1000")]
        [InlineData("replay", "t", "--pages", "3k")]
        [InlineData("replay", "t", "--batch", "-1")]
        [InlineData("replay", "t", "--views", "0")]
        [InlineData("replay", "t", "--view-access", "rwq")]
        [InlineData("replay", "t", "--view-access", "7")]
        [InlineData("replay", "t", "--views", "zero")]
        [InlineData("replay")]
        [InlineData]
        public void UsageErrors_AreExitCode2(params string[] args)
        {
            (int code, _, string stderr) = Run(args);
            Assert.Equal(2, code);
            Assert.NotEqual(string.Empty, stderr);
        }

        [Fact]
        public void Replay_MissingTrace_IsExitCode1()
        {
            (int code, _, string stderr) = Run("replay", Path.Combine(_dir, "missing.lackey"));
            Assert.Equal(1, code);
            Assert.Contains("trace not found", stderr);
        }

        [Fact]
        public void Replay_Sample_RunsQuietlyAndWritesReport()
        {
            string reportDir = Path.Combine(_dir, "report");
            (int code, string stdout, string stderr) = Run("replay", "--sample", "--guest", "1G", "--pages", "2m", "--report", reportDir);
            Assert.True(code == 0, stderr);
            Assert.Equal(string.Empty, stderr);
            Assert.DoesNotContain("\u001b[", stdout); // no ANSI escapes when not on a terminal
            string[] files = Directory.GetFiles(reportDir);
            Assert.NotEmpty(files);
            Assert.All(files, f => Assert.Contains(f, stdout));
        }

        [Fact]
        public void Replay_AltViews_ReportsLazyCopiesAndRelaxedRights()
        {
            // The sample over 3 views (host + 2 altp2m views with default access rx): each view's
            // first touch of a page is a not-present violation (lazy copy), each first store to
            // a page a rights violation the domain relaxes; the host view never faults.
            string reportDir = Path.Combine(_dir, "views");
            (int code, string stdout, string stderr) = Run("replay", "--sample", "--guest", "256M", "--views", "3", "--view-access", "rx", "--report", reportDir);
            Assert.True(code == 0, stderr);
            Assert.Contains("altp2m default access RX", stdout);
            Assert.Contains("Views", stdout);
            Assert.Contains("│ not present │ rights │ Misconfigs │ Unresolved │", stdout);   // not wrapped in a pipe
            using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(reportDir, "report.json")));
            System.Text.Json.JsonElement root = json.RootElement;
            Assert.Equal("RX", root.GetProperty("ViewAccess").GetString());
            Assert.Equal(0, root.GetProperty("UnresolvedFaults").GetInt64());
            System.Text.Json.JsonElement[] views = root.GetProperty("ViewStats").EnumerateArray().ToArray();
            Assert.Equal(3, views.Length);
            Assert.Equal(0, views[0].GetProperty("Violations").GetInt64());
            long uniquePages = root.GetProperty("UniquePages").GetInt64();
            foreach (System.Text.Json.JsonElement v in views.Skip(1))
            {
                Assert.InRange(v.GetProperty("NotPresent").GetInt64(), 1, uniquePages);
                Assert.InRange(v.GetProperty("Rights").GetInt64(), 1, uniquePages);
            }

            System.Text.Json.JsonElement store = root.GetProperty("Kinds").EnumerateArray().Single(k => k.GetProperty("Kind").GetString() == "Write");
            Assert.Equal(views.Sum(v => v.GetProperty("Rights").GetInt64()), store.GetProperty("Rights").GetInt64());
            string[] viewsCsv = File.ReadAllLines(Path.Combine(reportDir, "views.csv"));
            Assert.Equal("view,accesses,tlb_hits,tlb_misses,violations,violations_not_present,violations_rights,misconfigs,unresolved", viewsCsv[0]);
            Assert.Equal(4, viewsCsv.Length);
        }

        [Fact]
        public void Help_IsExitCode0AndListsCommands()
        {
            (int code, string stdout, _) = Run("--help");
            Assert.Equal(0, code);
            foreach (string command in new[] { "replay", "convert", "info", "bench" })
            {
                Assert.Contains(command, stdout);
            }
        }

        [Fact]
        public void Info_PrintsMachineIsaAndHugePages()
        {
            (int code, string stdout, string stderr) = Run("info");
            Assert.Equal(0, code);
            Assert.Equal(string.Empty, stderr);
            Assert.Contains($"{Environment.ProcessorCount} logical processors", stdout);
            Assert.Contains(Environment.Version.ToString(2), stdout);
            Assert.Contains("AVX2 " + (System.Runtime.Intrinsics.X86.Avx2.IsSupported ? "yes" : "no"), stdout);
            Assert.Contains("Batch walker", stdout);
            Assert.Contains("Transparent huge pages:", stdout);
        }

        [Theory]
        [InlineData("always [madvise] never", "madvise")]
        [InlineData("[always] madvise never", "always")]
        [InlineData("never", "never")]
        public void Info_ReadsTheSelectedThpMode(string sysfs, string expected)
        {
            Assert.Equal(expected, InfoCommand.SelectedMode(sysfs));
        }

        [Theory]
        [InlineData("4096", 4096L)]
        [InlineData("4K", 4096L)]
        [InlineData("2m", 2L << 20)]
        [InlineData("4G", 4L << 30)]
        [InlineData("4GiB", 4L << 30)]
        [InlineData("1TB", 1L << 40)]
        public void SizeSuffixes(string text, long expected)
        {
            Assert.True(CommandHelpers.TryParseSize(text, out long bytes));
            Assert.Equal(expected, bytes);
        }

        [Theory]
        [InlineData("")]
        [InlineData("G")]
        [InlineData("-4G")]
        [InlineData("0")]
        [InlineData("4X")]
        [InlineData("99999999999T")]
        public void SizeSuffixes_Rejected(string text)
        {
            Assert.False(CommandHelpers.TryParseSize(text, out _));
        }

        [Fact]
        public void Bench_WithoutCheckout_IsExitCode1()
        {
            Assert.Null(BenchCommand.FindRepositoryRoot(_dir));
            (int code, _, string stderr) = Run("bench", "--repo", _dir);
            Assert.Equal(1, code);
            Assert.Contains("FastEpt.sln", stderr);
        }

        [Fact]
        public void Bench_FindsThisCheckout()
        {
            Assert.Equal(RepositoryRoot.Find(), BenchCommand.FindRepositoryRoot(AppContext.BaseDirectory));
        }

        [Fact]
        public void Sample_IsCopiedNextToTheTool()
        {
            Assert.True(File.Exists(Path.Combine(AppContext.BaseDirectory, ReplayCommand.SampleRelativePath)));
        }
    }
}
