// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.IO;

namespace FastEpt.Tests.P2mTests
{
    /// <summary>
    /// <see cref="P2m.Translate"/> against the hand-derived vectors in tests/Data/translate*.txt
    /// (format: tests/Data/README.md; rules: docs/model/ept.md §1.4/1.5 and the SDM's EPT chapter). Each
    /// case runs on a fresh 64-frame host memory whose root table is MFN 0, with the entries
    /// written straight into the frames, and all four result fields are compared.
    /// </summary>
    public sealed class TranslateVectorTests
    {
        private static readonly Lazy<TestVectorSet> s_vectors = new(() => TestVectors.Load(TestVectors.DataDirectory()));

        private static readonly Lazy<Dictionary<string, TranslateVector>> s_byId
            = new(() => s_vectors.Value.Cases.ToDictionary(v => v.Id, StringComparer.Ordinal));

        /// <summary>One row per case, shown as <c>file:line</c>.</summary>
        public static TheoryData<string> CaseIds()
        {
            TheoryData<string> data = new();
            foreach (TranslateVector v in s_vectors.Value.Cases)
            {
                data.Add(v.Id);
            }

            return data;
        }

        [Theory]
        [MemberData(nameof(CaseIds))]
        public void Translate_MatchesHandDerivedVector(string id)
        {
            TranslateVector v = s_byId.Value[id];
            using HostMemory memory = new HostMemory(TestVectors.HostFrames * 4096L);
            using P2m p2m = new P2m(memory, v.Config.ToP2mOptions());
            Assert.Equal(0UL, p2m.RootMfn);
            TestVectors.Materialize(memory, p2m.RootMfn, v);

            EptTranslation t = p2m.Translate(v.Gpa, v.AccessKind);

            string actual = TestVectors.FormatResult(t.Status, t.Level, t.Hpa, t.Qualification);
            if (actual != v.Expected)
            {
                Assert.Fail($"{v.Describe()}\n  expected {v.Expected}\n  actual   {actual}");
            }
        }

        [Theory]
        [MemberData(nameof(CaseIds))]
        public void NativeTranslate_MatchesHandDerivedVector(string id)
        {
            // The same case through libfastept (via the Interop facade) on the same memory.
            TranslateVector v = s_byId.Value[id];
            using HostMemory memory = new HostMemory(TestVectors.HostFrames * 4096L);
            P2mOptions options = v.Config.ToP2mOptions();
            using P2m p2m = new P2m(memory, options);
            TestVectors.Materialize(memory, p2m.RootMfn, v);
            var native = new FastEpt.Interop.NativeWalker(memory, p2m.Eptp, options);

            EptTranslation t = native.Translate(v.Gpa, v.AccessKind);

            string actual = TestVectors.FormatResult(t.Status, t.Level, t.Hpa, t.Qualification);
            if (actual != v.Expected)
            {
                Assert.Fail($"{v.Describe()}\n  expected {v.Expected}\n  actual   {actual}");
            }
        }

        [Theory]
        [MemberData(nameof(CaseIds))]
        public void SdmModel_MatchesHandDerivedVector(string id)
        {
            // The test suite's own oracle (Support/SdmEptModel, the batch tests' reference) must
            // agree with the hand-derived vectors before it may judge anything else.
            TranslateVector v = s_byId.Value[id];
            using HostMemory memory = new HostMemory(TestVectors.HostFrames * 4096L);
            TestVectors.Materialize(memory, 0, v);
            var config = new SdmEptModel.Config(v.Config.Levels, v.Config.MaxPhyAddr, v.Config.ExecuteOnly, v.Config.Support1G, v.Config.AccessDirty, TestVectors.HostFrames);

            EptTranslation t = SdmEptModel.Walk(memory, 0, config, v.Gpa, v.AccessKind);

            string actual = TestVectors.FormatResult(t.Status, t.Level, t.Hpa, t.Qualification);
            if (actual != v.Expected)
            {
                Assert.Fail($"{v.Describe()}\n  expected {v.Expected}\n  actual   {actual}");
            }
        }

        [Fact]
        public void Vectors_EveryFileParsesCleanly_AndThereAreAtLeast60Cases()
        {
            TestVectorSet set = s_vectors.Value;
            Assert.True(set.Errors.Count == 0, "malformed vector lines:\n" + string.Join("\n", set.Errors));
            Assert.Contains("translate.txt", set.Files);
            Assert.True(set.Cases.Count >= 60, $"only {set.Cases.Count} cases in {string.Join(", ", set.Files)}");
            Assert.All(set.Files, f => Assert.Contains(set.Cases, c => c.File == f));

            // Every status, every level and both widths are exercised.
            foreach (EptStatus s in new[] { EptStatus.Ok, EptStatus.Violation, EptStatus.Misconfig })
            {
                Assert.Contains(set.Cases, c => c.ExpectedStatus == s && c.Config.Levels == 4);
                Assert.Contains(set.Cases, c => c.ExpectedStatus == s && c.Config.Levels == 5);
            }

            for (int level = 1; level <= 5; level++)
            {
                Assert.Contains(set.Cases, c => c.ExpectedStatus == EptStatus.Misconfig && c.ExpectedLevel == level);
                Assert.Contains(set.Cases, c => c.ExpectedStatus == EptStatus.Violation && c.ExpectedLevel == level);
            }
        }

        [Fact]
        public void Parser_ReportsEveryMalformedLine_AndKeepsTheGoodOnes()
        {
            string text = string.Join("\n", new[]
            {
                "# header",                                                               // 1
                "case 0x1000 r 0x1007 0x2007 0x3007 0x5007 => ok 1 0x5000 0x0   # fine", // 2
                "case 0x1000 r 0x1007 => ok 1 0x5000",                                  // 3: 3 results
                "case 0x1000 q 0x1007 => violation 3 0x0 0x1",                           // 4: bad access
                "case 0x1000 rr 0x1007 => violation 3 0x0 0x1",                          // 5: repeated letter
                "case 0x1000 r 1007 => violation 3 0x0 0x1",                             // 6: entry without 0x
                "case 0x1000 r 0x1007 => maybe 3 0x0 0x1",                               // 7: bad status
                "case 0x1000 r 0x1007 => violation 6 0x0 0x1",                           // 8: level > levels
                "case 0x1000 r 0x1007 0x0 0x0 0x0 0x0 => violation 3 0x0 0x1",           // 9: 5 entries, 4 levels
                "case 0x1000000000000 r 0x0 => violation 4 0x0 0x1",                     // 10: gpa >= 2^48
                "case 0x1000 r => violation 4 0x0 0x1",                                  // 11: no entry
                "case 0x1000 r 0x0 violation 4 0x0 0x1",                                 // 12: no =>
                "case 0x1000 w 0x0 => violation 4 0x0 0x1",                              // 13: qual bits 0-2 != access
                "case 0x1000 r 0x0 => misconfig 4 0x0 0x8",                              // 14: qual on a misconfig
                "case 0x1000 r 0x0 => violation 4 0x5000 0x1",                           // 15: hpa on a violation
                "case 0x1000 r 0x0 => ok 1 0x5001 0x0",                                  // 16: offset lost
                "case 0x1000 r 0x1g007 => violation 4 0x0 0x1",                          // 17: not hex
                "case 0x1000 r 0x10000000000000000 => violation 4 0x0 0x1",              // 18: 17 digits
                "frobnicate",                                                            // 19: unknown directive
                "config levels=6",                                                       // 20: bad levels
                "case 0x1000 r 0x0 => violation 4 0x0 0x1",                              // 21: under bad config
                "config levels=5 maxphyaddr=36 color=1",                                 // 22: unknown key
                "config levels=5 levels=5",                                              // 23: duplicate key
                "config xo=2",                                                           // 24: not 0/1
                "config maxphyaddr=53",                                                  // 25: out of range
                "config levels=5 maxphyaddr=36",                                         // 26: fine
                "case 0x0100000000001000 rwx 0x0 => violation 5 0x0 0x7",                // 27: fine
                "",                                                                      // 28
                "   \t  # only a comment",                                               // 29
            });

            TestVectorSet set = TestVectors.Parse("bad.txt", text);

            int[] badLines = { 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25 };
            Assert.Equal(badLines.Length, set.Errors.Count);
            foreach (int line in badLines)
            {
                Assert.Contains(set.Errors, e => e.StartsWith($"bad.txt:{line}: ", StringComparison.Ordinal));
            }

            Assert.Equal(new[] { 2, 27 }, set.Cases.Select(c => c.Line));
            TranslateVector first = set.Cases[0];
            Assert.Equal(TranslateConfig.Default, first.Config);
            Assert.Equal(0x1000UL, first.Gpa);
            Assert.Equal(AccessKind.Read, first.AccessKind);
            Assert.Equal(new ulong[] { 0x1007, 0x2007, 0x3007, 0x5007 }, first.Entries);
            Assert.Equal((EptStatus.Ok, 1, 0x5000UL, 0UL), (first.ExpectedStatus, first.ExpectedLevel, first.ExpectedHpa, first.ExpectedQualification));
            Assert.Equal("bad.txt:2", first.Id);

            // A config key left out takes its default, not the previous config's value.
            Assert.Equal(new TranslateConfig(5, 36, true, true, false), set.Cases[1].Config);
            Assert.Equal(AccessKind.Read | AccessKind.Write | AccessKind.Execute, set.Cases[1].AccessKind);
        }

        [Fact]
        public void Load_ReportsMalformedFilesAndMissingFiles()
        {
            string dir = Path.Combine(Path.GetTempPath(), "fastept-vectors-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            try
            {
                TestVectorSet empty = TestVectors.Load(dir);
                Assert.Empty(empty.Cases);
                Assert.Single(empty.Errors);

                File.WriteAllText(Path.Combine(dir, "translate-a.txt"), "case 0x0 r 0x0 => violation 4 0x0 0x1\r\ncase 0x0 r 0x0 => violation 4 0x0\r\n");
                File.WriteAllText(Path.Combine(dir, "translate.txt"), "config levels=5\ncase 0x0 x 0x0 => violation 5 0x0 0x4\n");
                File.WriteAllText(Path.Combine(dir, "other.txt"), "garbage\n");
                TestVectorSet set = TestVectors.Load(dir);
                Assert.Equal(new[] { "translate-a.txt", "translate.txt" }, set.Files);
                Assert.Equal(new[] { "translate-a.txt:1", "translate.txt:2" }, set.Cases.Select(c => c.Id));
                Assert.Single(set.Errors);
                Assert.StartsWith("translate-a.txt:2: ", set.Errors[0], StringComparison.Ordinal);
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        }

        [Fact]
        public void EntryWrites_FollowEachMfnField_AndStopBeforeLeavingHostMemory()
        {
            // GPA (1<<39)|(2<<30)|(3<<21)|(4<<12): slots 1, 2, 3, 4 at levels 4..1.
            TestVectorSet set = TestVectors.Parse("w.txt", string.Join("\n", new[]
            {
                "case 0x8080604ABC r 0x1007 0x2007 0x3007 0x77777037 => ok 1 0x77777ABC 0x0",
                "case 0x8080604ABC r 0x1007 0x40007 0x3007 => misconfig 3 0x0 0x0",
                "case 0x8080604ABC r 0x1007 0xFFF0000000002F00 0x3007 => violation 3 0x0 0x1",
            }));
            Assert.Empty(set.Errors);

            Assert.Equal(
                new[] { (0x0000UL + (1 * 8), 0x1007UL), (0x1000UL + (2 * 8), 0x2007UL), (0x2000UL + (3 * 8), 0x3007UL), (0x3000UL + (4 * 8), 0x77777037UL) },
                TestVectors.EntryWrites(set.Cases[0], 0));

            // MFN 64 is outside host memory: the third entry is not written anywhere.
            Assert.Equal(
                new[] { (0x0000UL + (1 * 8), 0x1007UL), (0x1000UL + (2 * 8), 0x40007UL) },
                TestVectors.EntryWrites(set.Cases[1], 0));

            // Only bits 51:12 name the next table; a not-present entry is followed like any other.
            Assert.Equal(
                new[] { (0x0000UL + (1 * 8), 0x1007UL), (0x1000UL + (2 * 8), 0xFFF0000000002F00UL), (0x2000UL + (3 * 8), 0x3007UL) },
                TestVectors.EntryWrites(set.Cases[2], 0));

            // Materialize zeroes every frame first, then writes those entries.
            using HostMemory memory = new HostMemory(TestVectors.HostFrames * 4096L);
            memory.Frame(63).Fill(0xAA);
            TestVectors.Materialize(memory, 0, set.Cases[0]);
            Assert.Equal(0UL, memory.ReadUInt64((63UL << 12) + 0x100));
            Assert.Equal(0x77777037UL, memory.ReadUInt64(0x3000 + (4 * 8)));
            Assert.Equal(0UL, memory.ReadUInt64(0x3000 + (5 * 8)));
        }
    }
}
