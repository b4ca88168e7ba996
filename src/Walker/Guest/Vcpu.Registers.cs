// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.CompilerServices;
using FastEpt.Internal;

namespace FastEpt
{
    // The paging registers of a vCPU (Intel SDM Vol. 3A 2.5, 4.1): CR0, CR3, CR4, IA32_EFER, PKRU,
    // IA32_PKRS, RFLAGS.AC and the four PAE PDPTE registers. The paging mode is derived from them
    // (docs/model/guest-paging.md §8.1). Every setter recomputes the walk's controls once, so a walk
    // reads one field instead of five registers.
    public sealed partial class Vcpu
    {
        private Cr0Flags _cr0 = Cr0Flags.PE | Cr0Flags.WP;
        private Cr4Flags _cr4 = Cr4Flags.Pge;
        private EferFlags _efer = EferFlags.Nxe;
        private ulong _cr3;
        private uint _pkru, _pkrs;
        private bool _ac;
        private GuestPagingMode _mode = GuestPagingMode.Flat;
        private WalkControls _controls = WalkControls.From(Cr0Flags.PE | Cr0Flags.WP, Cr4Flags.Pge, EferFlags.Nxe, GuestPagingMode.Flat, 0, 0, false);
        private Pdptes _pdptes;
        private volatile bool _pdptesLoaded;

        // The PDPTE registers of PAE paging (SDM 4.4.1).
        [InlineArray(4)]
        private struct Pdptes
        {
            private ulong _element0;
        }

        /// <summary>
        /// Guest paging mode, derived from <see cref="Cr0"/>.PG, <see cref="Cr4"/>.PAE/LA57 and
        /// <see cref="Efer"/>.LMA (SDM 4.1.1). Setting it sets those bits (LME with LMA) and keeps
        /// the others: <see cref="GuestPagingMode.Flat"/> clears PG; <see cref="GuestPagingMode.Paging32"/>
        /// and <see cref="GuestPagingMode.Pae"/> clear LME/LMA/LA57; the long modes set PAE, LME and LMA.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">The value is not a <see cref="GuestPagingMode"/>.</exception>
        public GuestPagingMode Mode
        {
            get => _mode;
            set
            {
                Cr0Flags cr0 = _cr0 | Cr0Flags.PG;
                Cr4Flags cr4 = _cr4 & ~Cr4Flags.La57;
                EferFlags efer = _efer & ~(EferFlags.Lme | EferFlags.Lma);
                switch (value)
                {
                    case GuestPagingMode.Flat:
                        cr0 = _cr0 & ~Cr0Flags.PG;
                        efer = _efer & ~EferFlags.Lma;
                        cr4 = _cr4;
                        break;
                    case GuestPagingMode.Paging32:
                        cr4 &= ~Cr4Flags.Pae;
                        break;
                    case GuestPagingMode.Pae:
                        cr4 |= Cr4Flags.Pae;
                        break;
                    case GuestPagingMode.LongMode4:
                    case GuestPagingMode.LongMode5:
                        cr4 |= Cr4Flags.Pae | (value == GuestPagingMode.LongMode5 ? Cr4Flags.La57 : 0);
                        efer |= EferFlags.Lme | EferFlags.Lma;
                        break;
                    default:
                        ThrowHelper.ThrowArgumentOutOfRangeException(nameof(value), value, "Unknown paging mode.");
                        return;
                }

                SetPaging(cr0, cr4, efer);
            }
        }

        /// <summary>
        /// CR0. A change of PG or WP calls the TLB's paging-control hook; EFER.LMA follows
        /// LME and PG after the write, as the processor sets it.
        /// </summary>
        public Cr0Flags Cr0
        {
            get => _cr0;
            set => SetPaging(value, _cr4, _efer);
        }

        /// <summary>
        /// CR4. The walk reads PSE, PAE, PGE, LA57, PCIDE, SMEP, SMAP, PKE and PKS; a combination a
        /// CPU refuses with #GP (PCIDE or LA57 outside IA-32e mode) is not checked.
        /// </summary>
        public Cr4Flags Cr4
        {
            get => _cr4;
            set => SetPaging(_cr0, value, _efer);
        }

        /// <summary>
        /// IA32_EFER. LMA is the processor's: after each write of <see cref="Cr0"/>, <see cref="Cr4"/>
        /// or <see cref="Efer"/> it is LME AND CR0.PG (a written LMA is replaced).
        /// </summary>
        public EferFlags Efer
        {
            get => _efer;
            set => SetPaging(_cr0, _cr4, value);
        }

        /// <summary>
        /// Guest CR3 (root of the stage-1 tables), written as a register write, not as the
        /// instruction: with CR4.PCIDE set bit 63 (no-flush) is passed to the TLB hook and dropped
        /// from the stored value; no reserved bit is checked. Under PAE paging the PDPTE registers
        /// are then loaded at the next translation, through the EPT view of that moment; use
        /// <see cref="LoadCr3"/> for MOV to CR3 exactly (the load at the instruction, its faults).
        /// </summary>
        public ulong Cr3
        {
            get => _cr3;
            set
            {
                _cr3 = (_cr4 & Cr4Flags.Pcide) != 0 ? value & ~Cr3NoFlush : value;
                if (_mode == GuestPagingMode.Pae)
                {
                    _pdptesLoaded = false;
                }

                OnCr3Load(value);
            }
        }

        /// <summary>CR0.WP: supervisor writes honour read-only pages (a view of <see cref="Cr0"/>).</summary>
        public bool Wp
        {
            get => (_cr0 & Cr0Flags.WP) != 0;
            set => Cr0 = value ? _cr0 | Cr0Flags.WP : _cr0 & ~Cr0Flags.WP;
        }

        /// <summary>EFER.NXE: bit 63 of PAE and IA-32e entries is execute-disable (a view of <see cref="Efer"/>).</summary>
        public bool Nxe
        {
            get => (_efer & EferFlags.Nxe) != 0;
            set => Efer = value ? _efer | EferFlags.Nxe : _efer & ~EferFlags.Nxe;
        }

        /// <summary>PKRU: access-disable (bit 2i) and write-disable (bit 2i+1) for user-mode pages with protection key i (CR4.PKE).</summary>
        public uint Pkru
        {
            get => _pkru;
            set => SetKeys(value, _pkrs);
        }

        /// <summary>IA32_PKRS (low 32 bits): the same for supervisor-mode pages (CR4.PKS).</summary>
        public uint Pkrs
        {
            get => _pkrs;
            set => SetKeys(_pkru, value);
        }

        /// <summary>
        /// RFLAGS.AC: with CR4.SMAP set, explicit supervisor-mode data accesses may use user-mode pages
        /// only while it is set. Read at each access; it calls no TLB hook (a cached right must not
        /// fold it in).
        /// </summary>
        public bool Ac
        {
            get => _ac;
            set
            {
                _ac = value;
                _controls = WalkControls.From(_cr0, _cr4, _efer, _mode, _pkru, _pkrs, value);
                OnAcChange(value);
            }
        }

        // CR4.PGE: global pages survive a CR3 load in the linear TLB.
        internal bool Pge => (_cr4 & Cr4Flags.Pge) != 0;

        // The current PCID: CR3 bits 11:0 with CR4.PCIDE set, else 0 (SDM 4.10.1).
        internal ushort Pcid => (_cr4 & Cr4Flags.Pcide) != 0 ? (ushort)(_cr3 & 0xFFF) : (ushort)0;

        private const ulong Cr3NoFlush = 1UL << 63;

        private static GuestPagingMode ModeOf(Cr0Flags cr0, Cr4Flags cr4, EferFlags efer)
            => (cr0 & Cr0Flags.PG) == 0 ? GuestPagingMode.Flat
               : (efer & EferFlags.Lma) != 0 ? ((cr4 & Cr4Flags.La57) != 0 ? GuestPagingMode.LongMode5 : GuestPagingMode.LongMode4)
               : (cr4 & Cr4Flags.Pae) != 0 ? GuestPagingMode.Pae : GuestPagingMode.Paging32;

        // One write of the paging controls. PDPTEs reload (lazily) where SDM 4.4.1 says a MOV to CR0
        // or CR4 loads them: PAE paging after the write and a change of CD, NW, PG, PAE, PGE, PSE or
        // SMEP (entering PAE paging changes one of them).
        private void SetPaging(Cr0Flags cr0, Cr4Flags cr4, EferFlags efer)
        {
            efer = (efer & ~EferFlags.Lma) | ((efer & EferFlags.Lme) != 0 && (cr0 & Cr0Flags.PG) != 0 ? EferFlags.Lma : 0);
            GuestPagingMode mode = ModeOf(cr0, cr4, efer);
            const Cr0Flags Cr0Reload = Cr0Flags.CD | Cr0Flags.NW | Cr0Flags.PG;
            const Cr4Flags Cr4Reload = Cr4Flags.Pae | Cr4Flags.Pge | Cr4Flags.Pse | Cr4Flags.Smep;
            if (mode == GuestPagingMode.Pae && (((cr0 ^ _cr0) & Cr0Reload) != 0 || ((cr4 ^ _cr4) & Cr4Reload) != 0 || _mode != mode))
            {
                _pdptesLoaded = false;
            }

            const Cr0Flags Cr0Paging = Cr0Flags.PG | Cr0Flags.WP;
            bool changed = ((cr0 ^ _cr0) & Cr0Paging) != 0 || cr4 != _cr4 || efer != _efer;
            _cr0 = cr0;
            _cr4 = cr4;
            _efer = efer;
            _mode = mode;
            _controls = WalkControls.From(cr0, cr4, efer, mode, _pkru, _pkrs, _ac);
            if (changed)
            {
                OnPagingControlChange();
            }
        }

        private void SetKeys(uint pkru, uint pkrs)
        {
            bool changed = pkru != _pkru || pkrs != _pkrs;
            _pkru = pkru;
            _pkrs = pkrs;
            _controls = WalkControls.From(_cr0, _cr4, _efer, _mode, pkru, pkrs, _ac);
            if (changed)
            {
                OnPagingControlChange();
            }
        }

        /// <summary>
        /// MOV to CR3 as the instruction does it (SDM 4.4.1, 4.10.4.1): in IA-32e mode bits 62:MAXPHYADDR
        /// (and 63 without CR4.PCIDE) must be clear; under PAE paging the four PDPTEs at bits 31:5 are read
        /// through the vCPU's EPT view (as reads, even with EPT A/D on: SDM 29.3.3.2) and checked for
        /// reserved bits. On success the registers change and the TLB hook runs, as with <see cref="Cr3"/>.
        /// </summary>
        /// <param name="value">The source operand (bit 63 = no-flush with CR4.PCIDE).</param>
        /// <param name="fault">The failure when the result is not Ok: <see cref="GuestStatus.GeneralProtection"/>
        /// (a reserved CR3 or PDPTE bit; <see cref="GuestTranslation.Gpa"/> is the PDPTE's address, 0 for CR3)
        /// or an EPT violation or misconfiguration on a PDPTE read (qualification bits 7 and 8 clear).</param>
        /// <returns><see cref="GuestStatus.Ok"/>, or the failure; the registers are unchanged on failure.</returns>
        /// <remarks>For the thread that runs the vCPU, like every register.</remarks>
        public GuestStatus LoadCr3(ulong value, out GuestTranslation fault)
        {
            fault = default;
            P2m ept = _domain.Altp2m.ViewLocked(_view);
            int maxPhys = Math.Min(ept.AddressBits, 52);
            if (_mode is GuestPagingMode.LongMode4 or GuestPagingMode.LongMode5)
            {
                ulong reserved = ~((1UL << maxPhys) - 1) & ((_cr4 & Cr4Flags.Pcide) != 0 ? ~Cr3NoFlush : ~0UL);
                if ((value & reserved) != 0)
                {
                    fault = new GuestTranslation(GuestStatus.GeneralProtection, 0, 0, 0, default, 0);
                    return fault.Status;
                }
            }
            else if (_mode == GuestPagingMode.Pae)
            {
                GuestStatus s = ReadPdptes(ept, value, out fault);
                if (s != GuestStatus.Ok)
                {
                    return s;
                }
            }

            _cr3 = (_cr4 & Cr4Flags.Pcide) != 0 ? value & ~Cr3NoFlush : value;
            OnCr3Load(value);
            return GuestStatus.Ok;
        }

        /// <summary>
        /// Loads the PAE PDPTE registers from the current CR3 now, as a MOV to CR0 or CR4 does when it
        /// enters PAE paging or changes CD, NW, PG, PAE, PGE, PSE or SMEP (SDM 4.4.1). Without it the
        /// setters leave the load to the next translation. Does nothing outside PAE paging.
        /// </summary>
        /// <param name="fault">The failure, as for <see cref="LoadCr3"/>.</param>
        /// <returns><see cref="GuestStatus.Ok"/>, or the failure (the PDPTE registers are then unchanged).</returns>
        public GuestStatus LoadPdptes(out GuestTranslation fault)
        {
            fault = default;
            return _mode == GuestPagingMode.Pae ? ReadPdptes(_domain.Altp2m.ViewLocked(_view), _cr3, out fault) : GuestStatus.Ok;
        }

        /// <summary>The PAE PDPTE register <paramref name="index"/> (0 to 3) as last loaded (0 before any load).</summary>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is not 0 to 3.</exception>
        public ulong GetPdpte(int index)
        {
            if ((uint)index >= 4)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(index), index, "A PDPTE register index is 0 to 3.");
            }

            return _pdptes[index];
        }

        // Reads the four PDPTEs of the PDPT at CR3 bits 31:5 through `ept` and checks them (SDM 4.4.1,
        // table 4-8: bits 2:1, 8:5 and 63:MAXPHYADDR reserved in a present PDPTE). All four or none.
        private GuestStatus ReadPdptes(P2m ept, ulong cr3, out GuestTranslation fault)
        {
            Span<ulong> loaded = stackalloc ulong[4];
            int maxPhys = Math.Min(ept.AddressBits, 52);
            ulong reserved = PdpteReserved | ~((1UL << maxPhys) - 1);
            HostMemory memory = _domain.Memory;
            ulong hostBytes = (ulong)memory.FrameCount << EptEntry.PageBits;
            for (int i = 0; i < 4; i++)
            {
                ulong gpa = (cr3 & 0xFFFF_FFE0UL) + ((ulong)i << 3);
                if (gpa >= ept.GpaLimit)
                {
                    fault = new GuestTranslation(GuestStatus.EptViolation, gpa, 0, 0,
                                                 new EptTranslation(EptStatus.Violation, 0, ept.Levels, (ulong)AccessKind.Read), 3);
                    return fault.Status;
                }

                // A read, not a paging-structure access: no GLA (qualification bits 7 and 8 clear).
                EptTranslation t = ept.Translate(gpa, AccessKind.Read);
                if (t.Status != EptStatus.Ok)
                {
                    fault = new GuestTranslation(t.Status == EptStatus.Misconfig ? GuestStatus.EptMisconfig : GuestStatus.EptViolation, gpa, 0, 0, t, 3);
                    return fault.Status;
                }

                ulong pdpte = t.Hpa + 8 <= hostBytes ? Volatile.Read(ref memory.DangerousSlot(t.Hpa)) : ~0UL;
                if ((pdpte & PtePresent) != 0 && (pdpte & reserved) != 0)
                {
                    fault = new GuestTranslation(GuestStatus.GeneralProtection, gpa, 0, 0, default, 3);
                    return fault.Status;
                }

                loaded[i] = pdpte;
            }

            for (int i = 0; i < 4; i++)
            {
                _pdptes[i] = loaded[i];
            }

            _pdptesLoaded = true;
            fault = default;
            return GuestStatus.Ok;
        }

        private const ulong PdpteReserved = 0b1_1110_0110;      // bits 8:5 and 2:1
    }
}
