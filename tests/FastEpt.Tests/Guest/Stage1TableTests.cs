// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.IO;

namespace FastEpt.Tests.Guest
{
    /// <summary>
    /// <see cref="Vcpu.TranslateLinear"/> against the hand-derived stage-1 vectors in
    /// tests/Data/stage1-cases.txt (format and layout in the file's header). Each case runs in a
    /// fresh domain whose EPT maps the guest table frames and the expected data page 4K RamRw
    /// RWX, so the EPT never interferes; the result, the A/D bits left in guest RAM, and
    /// <see cref="Vcpu.TranslateLinearBatch"/> of the same address are checked. Also the
    /// argument checks of both entry points.
    /// </summary>
    public sealed class Stage1TableTests
    {
        private const string FileName = "stage1-cases.txt";

        private static readonly Lazy<Stage1CaseSet> s_cases = new(() => Stage1CaseFile.Load(FindDataFile()));

        /// <summary>One row per case, shown as <c>file:line</c>.</summary>
        public static TheoryData<string> CaseIds()
        {
            TheoryData<string> data = new();
            foreach (Stage1Case c in s_cases.Value.Cases)
            {
                data.Add(c.Id);
            }

            return data;
        }

        [Fact]
        public void DataFile_ParsesCleanly_AndCoversEnoughCases()
        {
            Stage1CaseSet set = s_cases.Value;
            Assert.Empty(set.Errors);
            Assert.True(set.Cases.Count >= 40, $"only {set.Cases.Count} cases");

            // Every family of outcome is represented.
            Assert.Contains(set.Cases, c => c.Expected.Status == GuestStatus.Ok && c.Expected.Level == 1);
            Assert.Contains(set.Cases, c => c.Expected.Status == GuestStatus.Ok && c.Expected.Level == 2);
            Assert.Contains(set.Cases, c => c.Expected.Status == GuestStatus.Ok && c.Expected.Level == 3);
            Assert.Contains(set.Cases, c => c.Expected.Status == GuestStatus.NonCanonical);
            foreach (PageFaultErrorCode bit in new[] { PageFaultErrorCode.Present, PageFaultErrorCode.Write, PageFaultErrorCode.User, PageFaultErrorCode.Reserved, PageFaultErrorCode.InstructionFetch })
            {
                Assert.Contains(set.Cases, c => c.Expected.Status == GuestStatus.PageFault && (c.Expected.ErrorCode & bit) != 0);
            }

            Assert.Contains(set.Cases, c => c.Levels == 5);
            Assert.Contains(set.Cases, c => !c.Wp);
            Assert.Contains(set.Cases, c => !c.Nxe);
        }

        [Fact]
        public void Parser_RejectsMalformedLines()
        {
            string text = string.Join('\n',
                "config levels=6",
                "case sr PWU => ok 8K 0x0",
                "case sq PWU => pf 0x0 4",
                "case sr PWQ => pf 0x0 4",
                "case sr PWU PWUS PWU => ok 1G 0x0",
                "case sr PWU PWU PWU PWU PWU => ok 4K 0x0",
                "case sr PWU",
                "bogus line",
                "case sr PWU+64 => pf 0x9 4",
                "case sr P P P P => ok 4K 0x0");
            Stage1CaseSet set = Stage1CaseFile.Parse("t.txt", text);
            Assert.Equal(9, set.Errors.Count);
            Stage1Case only = Assert.Single(set.Cases);
            Assert.Equal("t.txt:10", only.Id);
            Assert.Equal(new[] { Pte.Present, Pte.Present, Pte.Present, Pte.Present }, only.Entries);
        }

        [Theory]
        [MemberData(nameof(CaseIds))]
        public void TranslateLinear_MatchesHandDerivedCase(string id)
        {
            Stage1Case c = s_cases.Value.Cases.Single(x => x.Id == id);
            using HostMemory memory = new(512L * 4096);
            using Domain domain = new(memory, new DomainOptions { AltViews = 0, P2m = new P2mOptions { AddressBits = c.MaxPhysAddr } });
            Dictionary<ulong, ulong> mfnOf = new();
            for (int i = 0; i < c.Levels; i++)
            {
                ulong mfn = memory.AllocateFrame();
                mfnOf[Stage1Case.TableGfn + (ulong)i] = mfn;
                domain.HostP2m.SetEntry(Stage1Case.TableGfn + (ulong)i, mfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            ulong dataMfn = 0;
            if (c.Expected.Status == GuestStatus.Ok)
            {
                dataMfn = memory.AllocateFrame();
                domain.HostP2m.SetEntry(c.Expected.Gpa >> 12, dataMfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            // Lay the entries out (see the file header) and remember every slot written.
            ulong[] slotHpa = new ulong[c.Entries.Length];
            for (int i = 0; i < c.Entries.Length; i++)
            {
                int level = c.Levels - i;
                slotHpa[i] = (mfnOf[Stage1Case.TableGfn + (ulong)i] << 12) + (Stage1Case.Index(c.Gla, level) * 8);
                memory.WriteUInt64(slotHpa[i], c.EntryValue(i));
            }

            ulong[][] before = mfnOf.Values.Select(m => ReadFrame(memory, m)).ToArray();

            Vcpu cpu = domain.Vcpus[0];
            cpu.Mode = c.Levels == 5 ? GuestPagingMode.LongMode5 : GuestPagingMode.LongMode4;
            cpu.Cr3 = Stage1Case.TableGfn << 12;
            cpu.Wp = c.Wp;
            cpu.Nxe = c.Nxe;
            GuestTranslation r = cpu.TranslateLinear(c.Gla, c.Access);

            Assert.Equal(c.Expected.Status, r.Status);
            switch (c.Expected.Status)
            {
                case GuestStatus.Ok:
                    Assert.Equal($"0x{c.Expected.Gpa:X}", $"0x{r.Gpa:X}");
                    Assert.Equal(c.Expected.Level, r.Level);
                    Assert.Equal((dataMfn << 12) | (c.Expected.Gpa & 0xFFF), r.Hpa);
                    Assert.Equal(PageFaultErrorCode.None, r.ErrorCode);
                    Assert.Equal(EptStatus.Ok, r.Ept.Status);
                    break;
                case GuestStatus.PageFault:
                    Assert.Equal($"0x{(uint)c.Expected.ErrorCode:X}", $"0x{(uint)r.ErrorCode:X}");
                    Assert.Equal(c.Expected.Level, r.Level);
                    Assert.Equal(0UL, r.Gpa);
                    Assert.Equal(0UL, r.Hpa);
                    break;
            }

            // Guest RAM afterwards: A on every entry of a successful walk, D on the leaf of a
            // write, nothing else; nothing at all after a fault.
            ulong[][] expected = before.Select(f => (ulong[])f.Clone()).ToArray();
            if (c.Expected.Status == GuestStatus.Ok)
            {
                for (int i = 0; i < c.Entries.Length; i++)
                {
                    bool leaf = i == c.Entries.Length - 1;
                    ulong set = Pte.Accessed | (leaf && (c.Access & PageFaultErrorCode.Write) != 0 ? Pte.Dirty : 0);
                    expected[i][Stage1Case.Index(c.Gla, c.Levels - i)] |= set;
                }
            }

            ulong[] mfns = mfnOf.Values.ToArray();
            for (int f = 0; f < mfns.Length; f++)
            {
                ulong[] now = ReadFrame(memory, mfns[f]);
                for (int s = 0; s < 512; s++)
                {
                    Assert.True(expected[f][s] == now[s], $"table {f} slot {s}: expected 0x{expected[f][s]:X}, found 0x{now[s]:X}");
                }
            }

            // The batch entry point gives the same answer (the tables now carry the A/D bits,
            // which never change an outcome).
            GuestTranslation[] batch = new GuestTranslation[1];
            Assert.Equal(1, cpu.TranslateLinearBatch([c.Gla], c.Access, batch));
            Assert.Equal(r, batch[0]);
        }

        [Theory]
        [InlineData(GuestPagingMode.LongMode4, 0xFFFF_8000_0000_0000UL, GuestStatus.EptViolation)]
        [InlineData(GuestPagingMode.LongMode4, 0xFFFF_FFFF_FFFF_FFFFUL, GuestStatus.EptViolation)]
        [InlineData(GuestPagingMode.LongMode4, 0x8000_0000_0000_0000UL, GuestStatus.NonCanonical)]
        [InlineData(GuestPagingMode.LongMode4, 0xFFFF_7FFF_FFFF_FFFFUL, GuestStatus.NonCanonical)]
        [InlineData(GuestPagingMode.LongMode5, 0xFF00_0000_0000_0000UL, GuestStatus.EptViolation)]
        [InlineData(GuestPagingMode.LongMode5, 0xFE00_0000_0000_0000UL, GuestStatus.NonCanonical)]
        public void TranslateLinear_AddressesWithBit63_AreClassifiedNotThrown(GuestPagingMode mode, ulong gla, GuestStatus expected)
        {
            // Upper-half addresses are the kernel's: they must walk (here: CR3 = 0 is not mapped,
            // so the first paging-structure read fails in the EPT) in every build configuration,
            // the overflow-checked Debug build included.
            using HostMemory memory = new(64L * 4096);
            using Domain domain = new(memory, new DomainOptions { AltViews = 0 });
            Vcpu cpu = domain.Vcpus[0];
            cpu.Mode = mode;
            Assert.Equal(expected, cpu.TranslateLinear(gla, PageFaultErrorCode.None).Status);
            GuestTranslation[] batch = new GuestTranslation[1];
            cpu.TranslateLinearBatch([gla], PageFaultErrorCode.None, batch);
            Assert.Equal(expected, batch[0].Status);
        }

        [Theory]
        [InlineData(0, 52)]
        [InlineData(1, 56)]
        [InlineData(2, 54)]
        [InlineData(3, 52)]
        public void GuestPhysicalWidthAbove52_EntryBits52AndUpStayIgnored(int entry, int bit)
        {
            // A 5-level EPT may be 57 bits wide, but a guest paging entry can only name 52 bits
            // of physical address (MAXPHYADDR is at most 52, SDM Vol. 3A 4.1.4); bits 62:52 of
            // every IA-32e entry are ignored (tables 4-15 to 4-20, no protection keys).
            using HostMemory memory = new(512L * 4096);
            using Domain domain = new(memory, new DomainOptions { AltViews = 0, P2m = new P2mOptions { Levels = 5, AddressBits = 57 } });
            ulong[] gfns = [0x10, 0x11, 0x12, 0x13, 0x20];
            ulong[] mfns = new ulong[gfns.Length];
            for (int i = 0; i < gfns.Length; i++)
            {
                mfns[i] = memory.AllocateFrame();
                domain.HostP2m.SetEntry(gfns[i], mfns[i], PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            const ulong Gla = 0x7FFF_89AB_CDEF;
            for (int i = 0; i < 4; i++)
            {
                ulong value = (gfns[i + 1] << 12) | Pte.Present | Pte.Writable | Pte.User | (i == entry ? 1UL << bit : 0);
                memory.WriteUInt64((mfns[i] << 12) + (Stage1Case.Index(Gla, 4 - i) * 8), value);
            }

            Vcpu cpu = domain.Vcpus[0];
            cpu.Mode = GuestPagingMode.LongMode4;
            cpu.Cr3 = 0x10000;
            GuestTranslation r = cpu.TranslateLinear(Gla, PageFaultErrorCode.User | PageFaultErrorCode.Write);

            Assert.Equal(GuestStatus.Ok, r.Status);
            Assert.Equal($"0x{0x20DEF:X}", $"0x{r.Gpa:X}");
            Assert.Equal((mfns[4] << 12) | 0xDEF, r.Hpa);
        }

        [Theory]
        [InlineData(PageFaultErrorCode.Reserved)]
        [InlineData(PageFaultErrorCode.Write | PageFaultErrorCode.Reserved)]
        [InlineData((PageFaultErrorCode)0x20)]
        [InlineData((PageFaultErrorCode)0x8000)]
        [InlineData((PageFaultErrorCode)0x4000_0000)]
        [InlineData(PageFaultErrorCode.ImplicitSupervisor | PageFaultErrorCode.User)]
        [InlineData(PageFaultErrorCode.ImplicitSupervisor | PageFaultErrorCode.InstructionFetch)]
        public void TranslateLinear_PfecOutsidePWUI_Throws(PageFaultErrorCode pfec)
        {
            using HostMemory memory = new(64L * 4096);
            using Domain domain = new(memory, new DomainOptions { AltViews = 0 });
            foreach (GuestPagingMode mode in new[] { GuestPagingMode.Flat, GuestPagingMode.LongMode4, GuestPagingMode.LongMode5 })
            {
                domain.Vcpus[0].Mode = mode;
                ArgumentOutOfRangeException e = Assert.Throws<ArgumentOutOfRangeException>(() => domain.Vcpus[0].TranslateLinear(0x1000, pfec));
                Assert.Equal("pfec", e.ParamName);
            }
        }

        [Theory]
        [InlineData(PageFaultErrorCode.None)]
        [InlineData(PageFaultErrorCode.Present | PageFaultErrorCode.Write | PageFaultErrorCode.User | PageFaultErrorCode.InstructionFetch)]
        public void TranslateLinear_PfecInsidePWUI_DoesNotThrow(PageFaultErrorCode pfec)
        {
            using HostMemory memory = new(64L * 4096);
            using Domain domain = new(memory, new DomainOptions { AltViews = 0 });
            domain.Vcpus[0].Mode = GuestPagingMode.LongMode4;

            // CR3 = 0 and nothing mapped: the PML4E read fails in the EPT, but the access is accepted.
            Assert.Equal(GuestStatus.EptViolation, domain.Vcpus[0].TranslateLinear(0x1000, pfec).Status);
        }

        [Fact]
        public void TranslateLinearBatch_ShortResults_ThrowsAndWritesNothing()
        {
            using HostMemory memory = new(64L * 4096);
            using Domain domain = new(memory, new DomainOptions { AltViews = 0 });
            Vcpu cpu = domain.Vcpus[0];
            GuestTranslation[] results = new GuestTranslation[2];
            ArgumentException e = Assert.Throws<ArgumentException>(() => cpu.TranslateLinearBatch([0x1000, 0x2000, 0x3000], PageFaultErrorCode.None, results));
            Assert.Equal("results", e.ParamName);
            Assert.All(results, r => Assert.Equal(default, r));

            // Empty in, nothing out; a longer results span is fine.
            Assert.Equal(0, cpu.TranslateLinearBatch([], PageFaultErrorCode.None, []));
            Assert.Equal(2, cpu.TranslateLinearBatch([0x1000, 0x2000], PageFaultErrorCode.None, new GuestTranslation[5]));
        }

        [Theory]
        [InlineData(PageFaultErrorCode.Reserved)]
        [InlineData((PageFaultErrorCode)0x20)]
        public void TranslateLinearBatch_PfecOutsidePWUI_ThrowsLikeTranslateLinear(PageFaultErrorCode pfec)
        {
            // The batch documents that each result equals TranslateLinear of the same address,
            // so an access TranslateLinear refuses must be refused here as well.
            using HostMemory memory = new(64L * 4096);
            using Domain domain = new(memory, new DomainOptions { AltViews = 0 });
            Vcpu cpu = domain.Vcpus[0];
            cpu.Mode = GuestPagingMode.LongMode4;
            ArgumentOutOfRangeException e = Assert.Throws<ArgumentOutOfRangeException>(() => cpu.TranslateLinearBatch([0x1000], pfec, new GuestTranslation[1]));
            Assert.Equal("pfec", e.ParamName);
        }

        private static ulong[] ReadFrame(HostMemory memory, ulong mfn)
        {
            ulong[] words = new ulong[512];
            for (int i = 0; i < 512; i++)
            {
                words[i] = memory.ReadUInt64((mfn << 12) + ((ulong)i * 8));
            }

            return words;
        }

        private static string FindDataFile()
        {
            string copied = Path.Combine(AppContext.BaseDirectory, "Data", FileName);
            return System.IO.File.Exists(copied) ? copied : Path.Combine(TestVectors.DataDirectory(), FileName);
        }
    }
}
