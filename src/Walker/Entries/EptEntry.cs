// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.InteropServices;

namespace FastEpt
{
    /// <summary>
    /// One 64-bit EPT paging-structure entry with Intel's hardware bits and Xen's software fields
    /// (docs/model/ept.md §1.1). Immutable and exactly 8 bytes: build a new value with the <c>With…</c>
    /// methods and publish it whole; never edit a live entry field by field.
    /// </summary>
    /// <remarks>No property validates anything: a value may hold reserved or out-of-range bits,
    /// exactly as a corrupted table would. Thread-safe (a plain value).</remarks>
    [StructLayout(LayoutKind.Sequential, Size = 8)]
    public readonly partial struct EptEntry : IEquatable<EptEntry>
    {
        private readonly ulong _raw;

        /// <summary>Wraps a raw 64-bit entry.</summary>
        /// <param name="raw">The entry as stored in a table.</param>
        public EptEntry(ulong raw) => _raw = raw;

        /// <summary>The entry as stored in a table.</summary>
        public ulong Raw => _raw;

        /// <summary>Bit 0: reads allowed.</summary>
        public bool Read => (_raw & (1UL << ReadShift)) != 0;
        /// <summary>Bit 1: writes allowed.</summary>
        public bool Write => (_raw & (1UL << WriteShift)) != 0;
        /// <summary>Bit 2: instruction fetches allowed.</summary>
        public bool Execute => (_raw & (1UL << ExecuteShift)) != 0;
        /// <summary>Bits 2:0 as a number (r = 1, w = 2, x = 4).</summary>
        public byte Rwx => (byte)(_raw & RwxMask);
        /// <summary>Bits 5:3: EPT memory type.</summary>
        public byte MemoryType => (byte)((_raw & MemoryTypeMask) >> MemoryTypeShift);
        /// <summary>Bit 6: ignore PAT.</summary>
        public bool IgnorePat => (_raw & IgnorePatBit) != 0;
        /// <summary>Bit 7: superpage.</summary>
        public bool SuperPage => (_raw & SuperPageBit) != 0;
        /// <summary>Bit 8: accessed.</summary>
        public bool Accessed => (_raw & AccessedBit) != 0;
        /// <summary>Bit 9: dirty.</summary>
        public bool Dirty => (_raw & DirtyBit) != 0;
        /// <summary>Bit 10: software recalc marker.</summary>
        public bool Recalc => (_raw & RecalcBit) != 0;
        /// <summary>Bit 11: snoop.</summary>
        public bool Snoop => (_raw & SnoopBit) != 0;
        /// <summary>Bits 51:12: frame number.</summary>
        public ulong Mfn => (_raw & MfnMask) >> MfnShift;
        /// <summary>Bits 57:52: p2m type (a corrupted entry may hold a value outside the enum).</summary>
        public P2mType Type => (P2mType)((_raw & TypeMask) >> TypeShift);
        /// <summary>Bit 58: paging-write permission.</summary>
        public bool PagingWrite => (_raw & PagingWriteBit) != 0;
        /// <summary>Bits 62:59: p2m access (a corrupted entry may hold 11..15).</summary>
        public P2mAccess Access => (P2mAccess)((_raw & AccessMask) >> AccessShift);
        /// <summary>Bit 63: suppress #VE.</summary>
        public bool SuppressVe => (_raw & SuppressVeBit) != 0;

        /// <summary>Present: any of bits 2:0 set (the hardware walks through it).</summary>
        public bool IsPresent => (_raw & RwxMask) != 0;

        /// <summary>
        /// Xen's "valid": any bit other than suppress-#VE set, and the type is not
        /// <see cref="P2mType.Invalid"/>. Valid-but-not-present entries carry type information
        /// (populate-on-demand, paging, MMIO placeholders).
        /// </summary>
        public bool IsValid => (_raw & ~SuppressVeBit) != 0 && Type != P2mType.Invalid;

        /// <summary>Returns a copy with bits 2:0 replaced.</summary>
        public EptEntry WithRwx(bool read, bool write, bool execute)
            => new((_raw & ~RwxMask) | (read ? 1UL : 0) | (write ? 2UL : 0) | (execute ? 4UL : 0));
        /// <summary>Returns a copy with the memory type (bits 5:3) replaced; only the low 3 bits of <paramref name="type"/> are used.</summary>
        public EptEntry WithMemoryType(byte type) => new((_raw & ~MemoryTypeMask) | (((ulong)type << MemoryTypeShift) & MemoryTypeMask));
        /// <summary>Returns a copy with bit 6 set or cleared.</summary>
        public EptEntry WithIgnorePat(bool value) => WithBit(IgnorePatBit, value);
        /// <summary>Returns a copy with bit 7 set or cleared.</summary>
        public EptEntry WithSuperPage(bool value) => WithBit(SuperPageBit, value);
        /// <summary>Returns a copy with bit 8 set or cleared.</summary>
        public EptEntry WithAccessed(bool value) => WithBit(AccessedBit, value);
        /// <summary>Returns a copy with bit 9 set or cleared.</summary>
        public EptEntry WithDirty(bool value) => WithBit(DirtyBit, value);
        /// <summary>Returns a copy with bit 10 set or cleared.</summary>
        public EptEntry WithRecalc(bool value) => WithBit(RecalcBit, value);
        /// <summary>Returns a copy with bit 11 set or cleared.</summary>
        public EptEntry WithSnoop(bool value) => WithBit(SnoopBit, value);
        /// <summary>Returns a copy with bit 58 set or cleared.</summary>
        public EptEntry WithPagingWrite(bool value) => WithBit(PagingWriteBit, value);
        /// <summary>Returns a copy with bit 63 set or cleared.</summary>
        public EptEntry WithSuppressVe(bool value) => WithBit(SuppressVeBit, value);

        /// <summary>Returns a copy with the frame number replaced; bits above the 40-bit field are dropped
        /// (so <see cref="FastEpt.Mfn.Invalid"/> stores all ones, as Xen does).</summary>
        public EptEntry WithMfn(ulong mfn) => new((_raw & ~MfnMask) | ((mfn << MfnShift) & MfnMask));
        /// <summary>Returns a copy with the p2m type replaced.</summary>
        public EptEntry WithType(P2mType type) => new((_raw & ~TypeMask) | (((ulong)type << TypeShift) & TypeMask));
        /// <summary>Returns a copy with the p2m access replaced.</summary>
        public EptEntry WithAccess(P2mAccess access) => new((_raw & ~AccessMask) | (((ulong)access << AccessShift) & AccessMask));

        private EptEntry WithBit(ulong bit, bool value) => new(value ? _raw | bit : _raw & ~bit);

        /// <inheritdoc/>
        public bool Equals(EptEntry other) => _raw == other._raw;
        /// <inheritdoc/>
        public override bool Equals(object? obj) => obj is EptEntry other && other._raw == _raw;
        /// <inheritdoc/>
        public override int GetHashCode() => _raw.GetHashCode();
        /// <summary>Compares two entries bit for bit.</summary>
        public static bool operator ==(EptEntry left, EptEntry right) => left._raw == right._raw;
        /// <summary>Compares two entries bit for bit.</summary>
        public static bool operator !=(EptEntry left, EptEntry right) => left._raw != right._raw;

        /// <summary>The raw value and decoded fields, for diagnostics.</summary>
        public override string ToString()
            => $"0x{_raw:X16} [{(Read ? 'r' : '-')}{(Write ? 'w' : '-')}{(Execute ? 'x' : '-')} emt={MemoryType}"
             + $"{(IgnorePat ? " ipat" : "")}{(SuperPage ? " sp" : "")}{(Accessed ? " a" : "")}{(Dirty ? " d" : "")}"
             + $"{(Recalc ? " recalc" : "")} mfn=0x{Mfn:X} type={Type} access={Access}{(SuppressVe ? " sve" : "")}]";
    }
}
