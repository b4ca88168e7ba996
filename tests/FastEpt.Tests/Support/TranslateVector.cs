// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests
{
    /// <summary>One <c>case</c> line of a <c>translate*.txt</c> file, with the config in force.</summary>
    /// <param name="Config">The preceding <c>config</c> (or the defaults).</param>
    /// <param name="Gpa">Guest-physical address to translate.</param>
    /// <param name="AccessKind">The access (r/w/x letters).</param>
    /// <param name="Entries">Raw entries, top level first (see <see cref="TestVectors.EntryWrites"/>).</param>
    /// <param name="ExpectedStatus">Hand-derived status.</param>
    /// <param name="ExpectedLevel">Hand-derived level (Intel numbering).</param>
    /// <param name="ExpectedHpa">Hand-derived HPA (0 unless ok).</param>
    /// <param name="ExpectedQualification">Hand-derived qualification (0 unless violation).</param>
    /// <param name="File">File name (no directory), for reports.</param>
    /// <param name="Line">1-based line number of the case.</param>
    public sealed record TranslateVector(
        TranslateConfig Config,
        ulong Gpa,
        AccessKind AccessKind,
        ulong[] Entries,
        EptStatus ExpectedStatus,
        int ExpectedLevel,
        ulong ExpectedHpa,
        ulong ExpectedQualification,
        string File,
        int Line)
    {
        /// <summary><c>file:line</c>, unique over a data directory.</summary>
        public string Id => $"{File}:{Line}";

        /// <summary>The expectation in the file's syntax (<c>status level hpa qual</c>).</summary>
        public string Expected => TestVectors.FormatResult(ExpectedStatus, ExpectedLevel, ExpectedHpa, ExpectedQualification);

        /// <summary>The case in the file's syntax, with its location and config.</summary>
        public string Describe()
            => $"{Id}: [{Config}] case 0x{Gpa:X} {TestVectors.FormatAccess(AccessKind)} {string.Join(" ", Entries.Select(e => $"0x{e:X}"))} => {Expected}";

        /// <inheritdoc/>
        public override string ToString() => Id;
    }
}
