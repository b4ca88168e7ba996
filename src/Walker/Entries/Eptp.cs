// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;

namespace FastEpt
{
    /// <summary>
    /// An extended-page-table pointer (the VMCS EPTP field, SDM Vol. 3C; docs/model/ept.md §1.2):
    /// bits 2:0 the memory type of the paging structures, 5:3 the page-walk length minus one,
    /// 6 the accessed/dirty enable, 7 supervisor shadow-stack control, 11:8 reserved, 51:12 the
    /// root table's frame. <see cref="Check"/> is the VM-entry check (docs/model/ept.md §1.7).
    /// </summary>
    /// <remarks>No property validates anything: a value may hold any bits, as a guest hypervisor's
    /// VMCS may. Thread-safe (a plain value). <see cref="P2m.Eptp"/> gives a p2m's own value.</remarks>
    public readonly partial struct Eptp : IEquatable<Eptp>
    {
        /// <summary>Bits 2:0: the memory type used to read the EPT paging structures.</summary>
        public const ulong MemoryTypeMask = 0x7;
        /// <summary>The shift of the page-walk length field (bits 5:3).</summary>
        public const int WalkLengthShift = 3;
        /// <summary>Bits 5:3: the page-walk length minus one.</summary>
        public const ulong WalkLengthMask = 0x7UL << WalkLengthShift;
        /// <summary>Bit 6: accessed and dirty flags enabled.</summary>
        public const ulong AccessDirtyBit = 1UL << 6;
        /// <summary>Bit 7: supervisor shadow-stack control.</summary>
        public const ulong SupervisorShadowStackBit = 1UL << 7;
        /// <summary>Bits 11:8: reserved, must be zero.</summary>
        public const ulong ReservedMask = 0xFUL << 8;
        /// <summary>The memory type value UC (uncacheable).</summary>
        public const byte MemoryTypeUncacheable = 0;
        /// <summary>The memory type value WB (write-back).</summary>
        public const byte MemoryTypeWriteBack = 6;

        private readonly ulong _value;

        /// <summary>Wraps a raw EPTP.</summary>
        /// <param name="value">The EPTP as stored in a VMCS.</param>
        public Eptp(ulong value) => _value = value;

        /// <summary>Builds an EPTP from its fields (each masked into its bits; nothing is checked).</summary>
        /// <param name="rootMfn">The root table's frame (bits 51:12 and above).</param>
        /// <param name="walkLength">The page-walk length (4 or 5 for a valid EPTP).</param>
        /// <param name="memoryType">The paging structures' memory type (UC 0 or WB 6 for a valid EPTP).</param>
        /// <param name="accessDirty">Whether accessed/dirty flags are enabled (bit 6).</param>
        /// <returns>The EPTP.</returns>
        public static Eptp Create(ulong rootMfn, int walkLength, byte memoryType = MemoryTypeWriteBack, bool accessDirty = false)
            => new((rootMfn << EptEntry.PageBits) | (((ulong)(walkLength - 1) << WalkLengthShift) & WalkLengthMask)
                   | (memoryType & MemoryTypeMask) | (accessDirty ? AccessDirtyBit : 0));

        /// <summary>The EPTP as stored in a VMCS.</summary>
        public ulong Value => _value;

        /// <summary>Bits 2:0: the paging structures' memory type.</summary>
        public byte MemoryType => (byte)(_value & MemoryTypeMask);

        /// <summary>Bits 5:3 plus one: the page-walk length (1 .. 8; only 4 and 5 pass <see cref="Check"/>).</summary>
        public int WalkLength => (int)((_value & WalkLengthMask) >> WalkLengthShift) + 1;

        /// <summary>Bit 6: accessed and dirty flags enabled.</summary>
        public bool AccessDirtyEnabled => (_value & AccessDirtyBit) != 0;

        /// <summary>Bit 7: supervisor shadow-stack control.</summary>
        public bool SupervisorShadowStack => (_value & SupervisorShadowStackBit) != 0;

        /// <summary>Bits 63:12 shifted down: the root table's frame (bits above MAXPHYADDR included).</summary>
        public ulong RootMfn => _value >> EptEntry.PageBits;

        /// <inheritdoc/>
        public bool Equals(Eptp other) => _value == other._value;

        /// <inheritdoc/>
        public override bool Equals(object? obj) => obj is Eptp other && Equals(other);

        /// <inheritdoc/>
        public override int GetHashCode() => _value.GetHashCode();

        /// <summary>The value in hex.</summary>
        /// <returns>For example <c>0x000000000012301E</c>.</returns>
        public override string ToString() => "0x" + _value.ToString("X16", System.Globalization.CultureInfo.InvariantCulture);

        /// <summary>Compares two EPTPs.</summary>
        /// <param name="left">The first value.</param>
        /// <param name="right">The second value.</param>
        /// <returns>Whether they are equal.</returns>
        public static bool operator ==(Eptp left, Eptp right) => left.Equals(right);

        /// <summary>Compares two EPTPs.</summary>
        /// <param name="left">The first value.</param>
        /// <param name="right">The second value.</param>
        /// <returns>Whether they differ.</returns>
        public static bool operator !=(Eptp left, Eptp right) => !left.Equals(right);
    }
}
