// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>Intel #PF error-code bits (SDM Vol. 3A 4.7); as input to a walk they describe the access.</summary>
    [Flags]
    public enum PageFaultErrorCode : uint
    {
        /// <summary>No bit.</summary>
        None = 0,

        /// <summary>P: the fault was a protection violation (or reserved bit), not a not-present entry. Ignored as input.</summary>
        Present = 1,

        /// <summary>W/R: the access was a write.</summary>
        Write = 2,

        /// <summary>U/S: the access was a user-mode access.</summary>
        User = 4,

        /// <summary>RSVD: a reserved bit was set in a paging-structure entry. Not valid as input.</summary>
        Reserved = 8,

        /// <summary>I/D: the access was an instruction fetch (reported when EFER.NXE is set).</summary>
        InstructionFetch = 16,
    }

    /// <summary>Outcome of a guest linear-address translation.</summary>
    public enum GuestStatus : byte
    {
        /// <summary>Translated: <see cref="GuestTranslation.Gpa"/> and <see cref="GuestTranslation.Hpa"/> are valid.</summary>
        Ok,

        /// <summary>The guest's own tables fault: <see cref="GuestTranslation.ErrorCode"/> is the #PF error code.</summary>
        PageFault,

        /// <summary>
        /// An EPT violation on a guest paging-structure access (qualification bit 7 set, bit 8 clear)
        /// or on the final access (bits 7 and 8 set): see <see cref="GuestTranslation.Ept"/>.
        /// </summary>
        EptViolation,

        /// <summary>An EPT misconfiguration on one of the accesses (qualification 0).</summary>
        EptMisconfig,

        /// <summary>The linear address is not canonical for the paging mode (the CPU raises #GP, not #PF).</summary>
        NonCanonical,
    }

    /// <summary>Result of <see cref="Vcpu.TranslateLinear"/>.</summary>
    public readonly struct GuestTranslation : IEquatable<GuestTranslation>
    {
        internal GuestTranslation(GuestStatus status, ulong gpa, ulong hpa, PageFaultErrorCode errorCode, EptTranslation ept, int level)
        {
            Status = status;
            Gpa = gpa;
            Hpa = hpa;
            ErrorCode = errorCode;
            Ept = ept;
            Level = level;
        }

        /// <summary>What happened.</summary>
        public GuestStatus Status { get; }

        /// <summary>
        /// The guest-physical address: of the final access when the stage-1 walk completed, else of
        /// the paging-structure entry whose EPT access failed (0 for a page fault).
        /// </summary>
        public ulong Gpa { get; }

        /// <summary>The host-physical address of the access when <see cref="Status"/> is Ok.</summary>
        public ulong Hpa { get; }

        /// <summary>The #PF error code when <see cref="Status"/> is PageFault.</summary>
        public PageFaultErrorCode ErrorCode { get; }

        /// <summary>The failing EPT walk for EptViolation/EptMisconfig; the final EPT walk when Ok.</summary>
        public EptTranslation Ept { get; }

        /// <summary>Guest paging level of the leaf (1 = 4K page, 2 = 2M, 3 = 1G; 0 in Flat mode), or the faulting level.</summary>
        public int Level { get; }

        /// <inheritdoc/>
        public bool Equals(GuestTranslation other)
            => Status == other.Status && Gpa == other.Gpa && Hpa == other.Hpa && ErrorCode == other.ErrorCode
               && Ept == other.Ept && Level == other.Level;

        /// <inheritdoc/>
        public override bool Equals(object? obj) => obj is GuestTranslation t && Equals(t);

        /// <inheritdoc/>
        public override int GetHashCode() => HashCode.Combine(Status, Gpa, Hpa, ErrorCode, Ept, Level);

        /// <summary>Equality.</summary>
        public static bool operator ==(GuestTranslation left, GuestTranslation right) => left.Equals(right);

        /// <summary>Inequality.</summary>
        public static bool operator !=(GuestTranslation left, GuestTranslation right) => !left.Equals(right);

        /// <inheritdoc/>
        public override string ToString()
            => $"{Status} gpa=0x{Gpa:X} hpa=0x{Hpa:X} pfec=0x{(uint)ErrorCode:X} level={Level} ept=({Ept})";
    }
}
