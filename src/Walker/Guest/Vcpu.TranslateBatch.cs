// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // Batched guest linear translation: level-synchronous stage-1 walks whose paging-structure
    // accesses and final accesses go through one batched EPT translation per level.
    public sealed partial class Vcpu
    {
        /// <summary>
        /// Translates many linear addresses with the same access. Each result equals
        /// <see cref="TranslateLinear"/> of the same address.
        /// </summary>
        /// <returns>The number of results written (= <paramref name="glas"/>.Length).</returns>
        /// <exception cref="ArgumentException"><paramref name="results"/> is shorter than <paramref name="glas"/>.</exception>
        /// <remarks>
        /// The stage-1 walks advance level by level across up to 256 addresses at a time: at each
        /// level the paging-structure GPAs of every address still walking go through one
        /// <see cref="P2m.TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/>,
        /// so the EPT walks of different addresses overlap instead of waiting on each other, and
        /// the final accesses go through one more. An address whose walk is not a clean read (an
        /// EPT failure, a non-present or reserved entry, a permission fault, an accessed or dirty
        /// flag to set) is finished by the single-address walk, which produces the exact fault
        /// and performs the A/D writes. Takes no lock.
        /// </remarks>
        public int TranslateLinearBatch(ReadOnlySpan<ulong> glas, PageFaultErrorCode pfec, Span<GuestTranslation> results)
        {
            CheckPfec(pfec);

            if (results.Length < glas.Length)
            {
                ThrowHelper.ThrowArgumentException(nameof(results), "The results span is shorter than the address span.");
            }

            if (glas.Length == 0)
            {
                return 0;
            }

            P2m ept = _domain.Altp2m.ViewLocked(_view);
            GuestPagingMode mode = _mode;
            if (mode is not (GuestPagingMode.Flat or GuestPagingMode.LongMode4 or GuestPagingMode.LongMode5))
            {
                // 32-bit and PAE paging: one single-address walk each (their guests are rarely
                // batch-hot; the answers are the scalar walk's by construction).
                for (int i = 0; i < glas.Length; i++)
                {
                    results[i] = TranslateOn(ept, glas[i], pfec);
                }

                return glas.Length;
            }

            var walk = new BatchWalk(this, ept, pfec, mode);
            for (int start = 0; start < glas.Length; start += BatchWalk.Chunk)
            {
                int n = Math.Min(BatchWalk.Chunk, glas.Length - start);
                walk.Run(glas.Slice(start, n), results.Slice(start, n));
            }

            return glas.Length;
        }

        // One chunk of a batched translation: level-synchronous stage-1 walks, then the finals.
        private ref struct BatchWalk
        {
            public const int Chunk = 256;

            private readonly Vcpu _cpu;
            private readonly P2m _ept;
            private readonly PageFaultErrorCode _pfec;
            private readonly GuestPagingMode _mode;
            private readonly AccessKind _structKind;
            private readonly AccessKind _finalKind;

            public BatchWalk(Vcpu cpu, P2m ept, PageFaultErrorCode pfec, GuestPagingMode mode)
            {
                _cpu = cpu;
                _ept = ept;
                _pfec = pfec;
                _mode = mode;
                _structKind = ept.AccessDirtyEnabled ? AccessKind.Read | AccessKind.Write : AccessKind.Read;
                _finalKind = FinalKind(pfec);
            }

            public void Run(ReadOnlySpan<ulong> glas, Span<GuestTranslation> results)
            {
                Span<ulong> gpas = stackalloc ulong[Chunk];           // per walking address: the entry GPA, then the final GPA
                Span<ulong> tables = stackalloc ulong[Chunk];
                Span<int> active = stackalloc int[Chunk];
                Span<byte> flags = stackalloc byte[Chunk];            // the Rights* bits accumulated so far
                Span<int> leafLevel = stackalloc int[Chunk];
                Span<bool> leafGlobal = stackalloc bool[Chunk];     // the leaf's G flag under CR4.PGE
                Span<EptTranslation> ept = stackalloc EptTranslation[Chunk];
                Span<ulong> entryGpas = stackalloc ulong[Chunk];
                int n = glas.Length;
                HostMemory memory = _cpu._domain.Memory;
                ulong hostBytes = (ulong)memory.FrameCount << EptEntry.PageBits;
                // Entries are read with DangerousSlot below, behind the hostBytes check: memory must be live.
                if (memory.IsDisposed)
                {
                    ThrowHelper.ThrowObjectDisposedException(memory);
                }

                ulong gpaLimit = _ept.GpaLimit;

                int done = 0;                                        // addresses whose final GPA is in gpas[..done] order (via `active`)
                Span<int> finalOf = stackalloc int[Chunk];
                if (_mode == GuestPagingMode.Flat)
                {
                    for (int i = 0; i < n; i++)
                    {
                        Finish(glas, results, i, glas[i], 0, false, gpaLimit, gpas, finalOf, leafLevel, leafGlobal, ref done);
                    }
                }
                else
                {
                    int levels = _mode == GuestPagingMode.LongMode5 ? 5 : 4;
                    Stage1Masks(_ept.AddressBits, out ulong addrMask, out ulong highReserved);
                    PageFaultErrorCode pfec = _pfec;
                    bool write = (pfec & PageFaultErrorCode.Write) != 0;
                    WalkControls c = _cpu._controls;
                    ulong cr3 = _cpu._cr3 & addrMask;

                    int walking = 0;
                    for (int i = 0; i < n; i++)
                    {
                        ulong gla = glas[i];
                        if (!IsCanonical(gla, levels))
                        {
                            results[i] = Single(gla);
                            continue;
                        }

                        tables[i] = cr3;
                        flags[i] = RightsAll;
                        active[walking++] = i;
                    }

                    for (int level = levels; level >= 1 && walking > 0; level--)
                    {
                        int m = 0;
                        for (int k = 0; k < walking; k++)
                        {
                            int i = active[k];
                            ulong gpa = EntryGpa(tables[i], glas[i], level);
                            if (gpa >= gpaLimit)
                            {
                                results[i] = Single(glas[i]);
                                continue;
                            }

                            active[m] = i;
                            entryGpas[m++] = gpa;
                        }

                        walking = m;
                        _ept.TranslateBatch(entryGpas[..walking], _structKind, ept);
                        m = 0;
                        for (int k = 0; k < walking; k++)
                        {
                            int i = active[k];
                            EptTranslation t = ept[k];
                            if (t.Status != EptStatus.Ok || t.Hpa + 8 > hostBytes)
                            {
                                results[i] = Single(glas[i]);
                                continue;
                            }

                            ulong pte = Volatile.Read(ref memory.DangerousSlot(t.Hpa));
                            int rights = flags[i];
                            EntryStep step = Stage1Step(pte, level, ref rights, pfec, highReserved, c);
                            if (step >= EntryStep.NotPresent || (pte & PteAccessed) == 0)
                            {
                                results[i] = Single(glas[i]);     // the fault, or the A flag to set
                                continue;
                            }

                            flags[i] = (byte)rights;
                            if (step == EntryStep.Table)
                            {
                                tables[i] = pte & addrMask;
                                active[m++] = i;
                                continue;
                            }

                            if (write && (pte & PteDirty) == 0)
                            {
                                results[i] = Single(glas[i]);     // the D flag to set
                                continue;
                            }

                            Finish(glas, results, i, LeafGpa(pte, addrMask, glas[i], level), level, (pte & PteGlobal) != 0 && _cpu.Pge, gpaLimit, gpas, finalOf, leafLevel, leafGlobal, ref done);
                        }

                        walking = m;
                    }
                }

                _ept.TranslateBatch(gpas[..done], _finalKind, ept);
                for (int j = 0; j < done; j++)
                {
                    GuestTranslation r = FinalResult(gpas[j], ept[j], leafLevel[j]);
                    results[finalOf[j]] = r.Status == GuestStatus.Ok && leafLevel[j] != 0
                        ? new GuestTranslation(GuestStatus.Ok, r.Gpa, r.Hpa, 0, r.Ept, r.Level,
                                               EptEntry.PageBits + (EptEntry.TableOrder * (leafLevel[j] - 1)), leafGlobal[j])
                        : r;
                }
            }

            // A completed stage 1: queue the final access, or answer it at once beyond the EPT's width.
            private readonly void Finish(ReadOnlySpan<ulong> glas, Span<GuestTranslation> results, int i, ulong gpa, int level, bool global, ulong gpaLimit,
                                         Span<ulong> gpas, Span<int> finalOf, Span<int> leafLevel, Span<bool> leafGlobal, ref int done)
            {
                if (gpa >= gpaLimit)
                {
                    results[i] = Final(_ept, glas[i], gpa, _pfec, level);
                    return;
                }

                gpas[done] = gpa;
                finalOf[done] = i;
                leafGlobal[done] = global;
                leafLevel[done++] = level;
            }

            private readonly GuestTranslation Single(ulong gla) => _cpu.TranslateOn(_ept, gla, _pfec);
        }
    }
}
