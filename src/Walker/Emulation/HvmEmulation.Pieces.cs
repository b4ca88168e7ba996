// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics.CodeAnalysis;

namespace FastEpt
{
    // An access split at the page boundary into at most two pieces, each translated (and a RAM
    // page referenced) before anything is read or written.
    public sealed partial class HvmEmulation
    {
        // Splits the access at the page boundary and translates every piece before anything is
        // touched. False with the result to return when a piece cannot proceed.
        private bool Prepare(ulong gla, int length, PageFaultErrorCode pfec, AccessTag tag, out Pieces pieces, out EmulationResult result)
        {
            pieces = default;
            LastFailure = null;
            if (length > MaxAccessBytes)
            {
                result = Fail($"An access of {length} bytes is larger than {MaxAccessBytes}.");
                return false;
            }

            if (gla + (ulong)(length - 1) < gla)
            {
                result = Fail($"The access at 0x{gla:X} of {length} bytes wraps around the top of the address space.");
                return false;
            }

            int first = (int)Math.Min((ulong)length, EptEntry.PageSize - (gla & EptEntry.PageMask));
            pieces.Count = first == length ? 1 : 2;
            for (int p = 0; p < pieces.Count; p++)
            {
                ulong pieceGla = p == 0 ? gla : gla + (ulong)first;
                int pieceLength = p == 0 ? first : length - first;
                result = Translate(pieceGla, pieceLength, pfec, tag, ref pieces[p]);
                if (result != EmulationResult.Okay)
                {
                    pieces.Release();
                    return false;
                }
            }

            result = EmulationResult.Okay;
            return true;
        }

        private EmulationResult Translate(ulong gla, int length, PageFaultErrorCode pfec, AccessTag tag, ref Piece piece)
        {
            bool write = (pfec & PageFaultErrorCode.Write) != 0;
            AccessKind kind = write ? AccessKind.Write
                              : (pfec & PageFaultErrorCode.InstructionFetch) != 0 ? AccessKind.Execute : AccessKind.Read;
            bool user = (pfec & PageFaultErrorCode.User) != 0;
            piece = new Piece { Gla = gla, Length = length };
            for (int round = 0; round < MaxResolveRounds; round++)
            {
                GuestPage page = _vcpu.GetPageFromGva(gla, kind, user);
                switch (page.Status)
                {
                    case GuestPageStatus.Ok:
                        piece.Kind = PieceKind.Ram;
                        piece.Page = page;
                        return EmulationResult.Okay;

                    case GuestPageStatus.PageFault:
                        return Raise(14, (uint)page.Translation.ErrorCode, gla);

                    case GuestPageStatus.NonCanonical:
                        return Raise(13, 0, gla);

                    case GuestPageStatus.EptMisconfig:
                        // A lazily recalculated path (log-dirty, type changes): resolve it and look again.
                        if (page.Translation.Gpa < _domain.HostP2m.GpaLimit
                            && _domain.HandleEptMisconfig(_vcpu, page.Translation.Gpa) == FaultOutcome.Retry)
                        {
                            continue;
                        }

                        return Fail($"EPT misconfiguration at GPA 0x{page.Translation.Gpa:X} translating 0x{gla:X}.");
                }

                GuestTranslation t = page.Translation;
                bool final = page.Status == GuestPageStatus.NotRam || (t.Ept.Qualification & (1UL << 8)) != 0;
                ulong gpa = page.Status == GuestPageStatus.NotRam ? page.Gpa : t.Gpa;
                if (final && _domain.TryGetMmioDevice(gpa >> EptEntry.PageBits, out IMmioDevice device))
                {
                    if (tag == AccessTag.InstructionFetch || kind == AccessKind.Execute)
                    {
                        return Fail($"Instruction fetch from MMIO at GPA 0x{gpa:X}.");
                    }

                    piece.Kind = PieceKind.Mmio;
                    piece.Gpa = gpa;
                    piece.Device = device;
                    return EmulationResult.Okay;
                }

                if (page.Status == GuestPageStatus.NotRam || gpa >= _domain.HostP2m.GpaLimit)
                {
                    return Fail($"GPA 0x{gpa:X} (from 0x{gla:X}) is neither guest RAM nor a registered device.");
                }

                // Let the domain resolve what it can: lazy altp2m copy, PoD, unsharing, log-dirty.
                FaultOutcome o = _domain.HandleEptViolationExit(_vcpu, gpa, t.Ept.Qualification, gla);
                switch (o)
                {
                    case FaultOutcome.Retry:
                        continue;

                    case FaultOutcome.Mmio when write && final && IsDiscardWrite(gpa):
                        piece.Kind = PieceKind.Discard;
                        piece.Gpa = gpa;
                        return EmulationResult.Okay;

                    case FaultOutcome.MemAccessEvent:
                        LastFailure = null;
                        return EmulationResult.Retry;      // the vCPU waits for the listener's answer

                    case FaultOutcome.VirtualizationException:
                        return Raise(Domain.VeVector, 0, gla);

                    default:
                        return Fail($"EPT violation at GPA 0x{gpa:X} (qualification 0x{t.Ept.Qualification:X}) translating 0x{gla:X}: {o}.");
                }
            }

            return Fail($"The translation of 0x{gla:X} kept changing.");
        }

        private bool IsDiscardWrite(ulong gpa)
        {
            P2mType type = _domain.Altp2m.ViewLocked(_vcpu.View).GetEntry(gpa >> EptEntry.PageBits).Type;
            return type is P2mType.RamRo or P2mType.GrantMapRo;
        }

        private enum PieceKind : byte
        {
            Ram,
            Mmio,
            Discard,
        }

        private struct Piece
        {
            public ulong Gla;
            public int Length;
            public PieceKind Kind;
            public GuestPage Page;
            public ulong Gpa;
            public IMmioDevice? Device;
        }

        // At most two pieces: an access of up to 64 bytes crosses at most one page boundary.
        private struct Pieces
        {
            public int Count;
            private Piece _p0;
            private Piece _p1;

            public readonly bool AllRam
            {
                get
                {
                    bool ram = _p0.Kind == PieceKind.Ram;
                    return Count == 1 ? ram : ram && _p1.Kind == PieceKind.Ram;
                }
            }

            [UnscopedRef]
            public ref Piece this[int i] => ref i == 0 ? ref _p0 : ref _p1;

            // Drops the page references (each once: a released piece forgets its page).
            public void Release()
            {
                for (int i = 0; i < 2; i++)
                {
                    ref Piece p = ref this[i];
                    if (p.Kind == PieceKind.Ram && p.Page.IsOk)
                    {
                        p.Page.Dispose();
                        p.Page = default;
                    }
                }
            }
        }
    }
}
