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

        /// <summary>I/D: the access was an instruction fetch (reported when CR4.SMEP is set, or EFER.NXE under PAE or IA-32e paging).</summary>
        InstructionFetch = 16,

        /// <summary>PK: a protection key (PKRU or IA32_PKRS) refused the data access. Not valid as input.</summary>
        ProtectionKey = 1 << 5,

        /// <summary>
        /// Input only, never reported: an implicit supervisor-mode access (a descriptor table, the
        /// TSS, an IDT gate) at any CPL; SMAP refuses it on user-mode pages whatever RFLAGS.AC, and the
        /// error code reports it with U/S clear. Not with <see cref="User"/> or <see cref="InstructionFetch"/>.
        /// </summary>
        ImplicitSupervisor = 1u << 31,
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

        /// <summary>
        /// A reserved bit in a PAE PDPTE (or in the CR3 value of <see cref="Vcpu.LoadCr3"/>): the CPU raises
        /// #GP at the MOV that loads it. <see cref="GuestTranslation.Gpa"/> is the PDPTE's address.
        /// </summary>
        GeneralProtection,
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

        internal GuestTranslation(GuestStatus status, ulong gpa, ulong hpa, PageFaultErrorCode errorCode, EptTranslation ept, int level, int pageShift, bool global)
            : this(status, gpa, hpa, errorCode, ept, level)
        {
            PageShift = pageShift;
            Global = global;
        }

        /// <summary>What happened.</summary>
        public GuestStatus Status { get; }

        // The size of the stage-1 page that maps the address, as a shift (12, 21, 22 or 30), when
        // the stage-1 walk completed; 0 otherwise and in Flat mode. For the linear TLB.
        internal int PageShift { get; }

        // The leaf's G flag counted only while CR4.PGE is set (SDM 4.10.2.4), when the stage-1
        // walk completed. For the linear TLB.
        internal bool Global { get; }

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

        /// <summary>Guest paging level of the leaf (1 = 4K page, 2 = 2M or 4M, 3 = 1G; 0 in Flat mode), or the faulting level (3 = a PAE PDPTE).</summary>
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

    /// <summary>Outcome of <see cref="Vcpu.GetPageFromGva"/>.</summary>
    public enum GuestPageStatus
    {
        /// <summary>The page is referenced: <see cref="GuestPage.Bytes"/> is valid until the result is disposed.</summary>
        Ok,

        /// <summary>Stage 1 refused the access; <see cref="GuestPage.Translation"/> carries the #PF error code.</summary>
        PageFault,

        /// <summary>EPT refused the access and mem_access does not explain it (or is off).</summary>
        EptViolation,

        /// <summary>An EPT misconfiguration stopped the walk.</summary>
        EptMisconfig,

        /// <summary>The linear address is not canonical, or a PAE PDPTE loaded for this access has a reserved bit
        /// (<see cref="GuestStatus.GeneralProtection"/>): the CPU raises #GP either way.</summary>
        NonCanonical,

        /// <summary>The address translates, but not to an allocated guest RAM frame this access may use
        /// (MMIO, a type that forbids it on the mem_access path, or a frame being freed).</summary>
        NotRam,
    }

    /// <summary>
    /// A guest page found by <see cref="Vcpu.GetPageFromGva"/>. When <see cref="Status"/> is
    /// <see cref="GuestPageStatus.Ok"/> it holds one reference on the host frame
    /// (<see cref="HostMemory.TryAddReference"/>), so the frame is not reused before
    /// <see cref="Dispose"/>; dispose each successful result exactly once (it is a value type: a
    /// copy disposed again drops a reference it does not own).
    /// </summary>
    public readonly struct GuestPage : IDisposable
    {
        private readonly HostMemory? _memory;

        internal GuestPage(HostMemory? memory, GuestPageStatus status, GuestTranslation translation, ulong gpa, ulong mfn, P2mType type, bool viaMemAccess)
        {
            _memory = memory;
            Status = status;
            Translation = translation;
            Gpa = gpa;
            Mfn = mfn;
            Type = type;
            ViaMemAccess = viaMemAccess;
        }

        /// <summary>What happened.</summary>
        public GuestPageStatus Status { get; }

        /// <summary>True when the page is referenced.</summary>
        public bool IsOk => Status == GuestPageStatus.Ok;

        /// <summary>The fast path's translation (for a mem_access page, the EPT violation it explained).</summary>
        public GuestTranslation Translation { get; }

        /// <summary>The guest-physical address of the linear address (when stage 1 completed).</summary>
        public ulong Gpa { get; }

        /// <summary>The host frame, or <see cref="FastEpt.Mfn.Invalid"/> when no frame was found.</summary>
        public ulong Mfn { get; }

        /// <summary>The p2m type of the frame's entry.</summary>
        public P2mType Type { get; }

        /// <summary>The offset of the linear address in the page.</summary>
        public int Offset => (int)(Gpa & EptEntry.PageMask);

        /// <summary>True when the page was granted by the mem_access fallback (the fast path met an EPT violation).</summary>
        public bool ViaMemAccess { get; }

        /// <summary>The referenced frame's 4096 bytes.</summary>
        /// <exception cref="InvalidOperationException"><see cref="Status"/> is not Ok.</exception>
        public Span<byte> Bytes
            => _memory is not null ? _memory.Frame(Mfn) : throw new InvalidOperationException($"No page: {Status}.");

        /// <summary>Drops the reference (nothing for a failed result).</summary>
        /// <exception cref="InvalidOperationException">The reference was already dropped.</exception>
        public void Dispose() => _memory?.ReleaseReference(Mfn);

        /// <inheritdoc/>
        public override string ToString() => $"{Status} gpa=0x{Gpa:X} mfn=0x{Mfn:X} {Type}{(ViaMemAccess ? " via mem_access" : "")}";
    }
}
