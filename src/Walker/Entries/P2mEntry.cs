// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>
    /// What the p2m says about one GFN (Xen's <c>get_entry</c> result). A hole reads as Xen
    /// reports it: <see cref="Mfn.Invalid"/>, <see cref="P2mType.MmioDm"/>, access
    /// <see cref="P2mAccess.N"/>, suppress-#VE set, <see cref="IsMapped"/> false.
    /// </summary>
    public readonly struct P2mEntry : IEquatable<P2mEntry>
    {
        internal P2mEntry(ulong mfn, P2mType type, P2mAccess access, bool suppressVe, bool isMapped, int order)
        {
            Mfn = mfn;
            Type = type;
            Access = access;
            SuppressVe = suppressVe;
            IsMapped = isMapped;
            Order = order;
        }

        internal static P2mEntry Hole(int order) => new(FastEpt.Mfn.Invalid, P2mType.MmioDm, P2mAccess.N, true, false, order);

        internal P2mEntry WithType(P2mType type) => new(Mfn, type, Access, SuppressVe, IsMapped, Order);

        /// <summary>This GFN's own frame (a superpage's base plus the GFN's offset in it), or <see cref="Mfn.Invalid"/>.</summary>
        public ulong Mfn { get; }

        /// <summary>The p2m type.</summary>
        public P2mType Type { get; }

        /// <summary>The p2m access.</summary>
        public P2mAccess Access { get; }

        /// <summary>The suppress-#VE bit of the entry.</summary>
        public bool SuppressVe { get; }

        /// <summary>True for any valid entry, including populate-on-demand and paging types.</summary>
        public bool IsMapped { get; }

        /// <summary>0, 9 or 18 for a mapping; for a hole, the order of the level where the walk stopped.</summary>
        public int Order { get; }

        /// <inheritdoc/>
        public bool Equals(P2mEntry other)
            => Mfn == other.Mfn && Type == other.Type && Access == other.Access && SuppressVe == other.SuppressVe
               && IsMapped == other.IsMapped && Order == other.Order;

        /// <inheritdoc/>
        public override bool Equals(object? obj) => obj is P2mEntry e && Equals(e);

        /// <inheritdoc/>
        public override int GetHashCode() => HashCode.Combine(Mfn, Type, Access, SuppressVe, IsMapped, Order);

        /// <summary>Field-wise equality.</summary>
        public static bool operator ==(P2mEntry left, P2mEntry right) => left.Equals(right);

        /// <summary>Field-wise inequality.</summary>
        public static bool operator !=(P2mEntry left, P2mEntry right) => !left.Equals(right);

        /// <inheritdoc/>
        public override string ToString()
            => $"{(IsMapped ? "mapped" : "hole")} mfn={(Mfn == FastEpt.Mfn.Invalid ? "INVALID" : "0x" + Mfn.ToString("X"))} type={Type} access={Access} order={Order}{(SuppressVe ? " sve" : "")}";
    }

    /// <summary>
    /// The result of a hardware-style walk (<see cref="P2m.Translate"/>): status, host-physical
    /// address, the level that produced it (Intel numbering: 4 = PML4E … 1 = PTE) and, for a
    /// violation, the exit qualification (bits 0-2 the access, bits 3-5 the effective r/w/x).
    /// </summary>
    public readonly struct EptTranslation : IEquatable<EptTranslation>
    {
        // 16 bytes, so the SysV and Windows x64 ABIs return it in two registers.
        private readonly ulong _hpa;
        private readonly uint _qualification;
        private readonly EptStatus _status;
        private readonly byte _level;

        internal EptTranslation(EptStatus status, ulong hpa, int level, ulong qualification)
        {
            _hpa = hpa;
            _qualification = (uint)qualification;
            _status = status;
            _level = (byte)level;
        }

        /// <summary>Ok, Violation or Misconfig.</summary>
        public EptStatus Status => _status;

        /// <summary>The host-physical address for <see cref="EptStatus.Ok"/>; 0 otherwise.</summary>
        public ulong Hpa => _hpa;

        /// <summary>The leaf level for Ok, else the level of the failing entry (5/4 = top … 1 = PTE).</summary>
        public int Level => _level;

        /// <summary>Exit-qualification bits 0-6 for a violation; 0 otherwise.</summary>
        public ulong Qualification => _qualification;

        /// <inheritdoc/>
        public bool Equals(EptTranslation other)
            => Status == other.Status && Hpa == other.Hpa && Level == other.Level && Qualification == other.Qualification;

        /// <inheritdoc/>
        public override bool Equals(object? obj) => obj is EptTranslation t && Equals(t);

        /// <inheritdoc/>
        public override int GetHashCode() => HashCode.Combine(Status, Hpa, Level, Qualification);

        /// <summary>Field-wise equality.</summary>
        public static bool operator ==(EptTranslation left, EptTranslation right) => left.Equals(right);

        /// <summary>Field-wise inequality.</summary>
        public static bool operator !=(EptTranslation left, EptTranslation right) => !left.Equals(right);

        /// <inheritdoc/>
        public override string ToString() => $"{Status} hpa=0x{Hpa:X} level={Level} qual=0x{Qualification:X}";
    }
}
