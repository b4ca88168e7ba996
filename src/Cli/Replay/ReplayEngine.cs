// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastEpt.Cli.Traces;

namespace FastEpt.Cli.Replay
{
    /// <summary>
    /// The translating half of a replay, run on the caller's thread: folds each trace address
    /// into the guest, deals it to a view (round-robin when there are altp2m views), translates it
    /// through the view's TLB or p2m (batched when asked) and counts the outcome: the leaf level
    /// of a translation, or the fault (see <c>ReplayEngine.Faults.cs</c>). The statistics of the
    /// trace itself are <see cref="TraceStatistics"/>'.
    /// </summary>
    internal sealed partial class ReplayEngine
    {
        private readonly ReplayGuest _guest;
        private readonly ReplayOptions _options;
        private readonly int _viewCount;
        private readonly bool _fast;                // one view, scalar: ReplayHostScalar
        private readonly ulong _guestPages;
        private readonly ulong _pageMask;       // _guestPages - 1 when a power of two, else 0
        private readonly long[] _kindNotPresent = new long[3];
        private readonly long[] _kindRights = new long[3];
        private readonly long[] _kindMisconfigs = new long[3];
        private readonly long[] _leafLevels = new long[8];
        private readonly long[] _viewAccesses;
        private readonly long[] _viewNotPresent;
        private readonly long[] _viewRights;
        private readonly long[] _viewMisconfigs;
        private readonly long[] _viewUnresolved;
        private readonly ulong[][] _batchGpas = Array.Empty<ulong[]>();
        private readonly int[] _batchCounts = Array.Empty<int>();
        private readonly EptTranslation[] _batchResults = Array.Empty<EptTranslation>();
        private int _view;                      // the view the next access goes to

        public ReplayEngine(ReplayGuest guest, ReplayOptions options)
        {
            _guest = guest;
            _options = options;
            _viewCount = options.Views + 1;
            _fast = _viewCount == 1 && options.Batch == 0;
            _guestPages = guest.GuestPages;
            _pageMask = (_guestPages & (_guestPages - 1)) == 0 ? _guestPages - 1 : 0;
            _viewAccesses = new long[_viewCount];
            _viewNotPresent = new long[_viewCount];
            _viewRights = new long[_viewCount];
            _viewMisconfigs = new long[_viewCount];
            _viewUnresolved = new long[_viewCount];
            if (options.Batch > 0)
            {
                _batchGpas = new ulong[_viewCount * 3][];
                for (int i = 0; i < _batchGpas.Length; i++)
                {
                    _batchGpas[i] = new ulong[options.Batch];
                }

                _batchCounts = new int[_viewCount * 3];
                _batchResults = new EptTranslation[options.Batch];
            }
        }

        /// <summary>Views, the host view included.</summary>
        public int ViewCount => _viewCount;

        /// <summary>Successful translations by leaf level (index 1..7).</summary>
        public IReadOnlyList<long> LeafLevels => _leafLevels;

        /// <summary>EPT violations on not-present entries, by kind (read, write, fetch).</summary>
        public IReadOnlyList<long> KindNotPresent => _kindNotPresent;

        /// <summary>EPT violations on present entries lacking the right, by kind.</summary>
        public IReadOnlyList<long> KindRights => _kindRights;

        /// <summary>EPT misconfigurations, by kind.</summary>
        public IReadOnlyList<long> KindMisconfigs => _kindMisconfigs;

        /// <summary>Accesses dealt to each view (complete once <see cref="Finish"/> ran).</summary>
        public IReadOnlyList<long> ViewAccesses => _viewAccesses;

        /// <summary>EPT violations on not-present entries, by view.</summary>
        public IReadOnlyList<long> ViewNotPresent => _viewNotPresent;

        /// <summary>EPT violations on present entries lacking the right, by view.</summary>
        public IReadOnlyList<long> ViewRights => _viewRights;

        /// <summary>EPT misconfigurations, by view.</summary>
        public IReadOnlyList<long> ViewMisconfigs => _viewMisconfigs;

        /// <summary>Accesses whose fault the domain did not resolve, by view.</summary>
        public IReadOnlyList<long> ViewUnresolved => _viewUnresolved;

        /// <summary>Translates every access of <paramref name="chunk"/>.</summary>
        public void Translate(ReadOnlySpan<TraceAccess> chunk)
        {
            if (_fast)
            {
                SoftTlb? tlb = _guest.Tlbs[0];
                if (tlb is not null)
                {
                    ReplayHostScalar(chunk, new TlbTranslator(tlb));
                }
                else
                {
                    ReplayHostScalar(chunk, new WalkTranslator(_guest.P2ms[0]));
                }
            }
            else
            {
                ReplayGeneral(chunk);
            }
        }

        /// <summary>Translates what is still queued; <paramref name="total"/> is the accesses of the whole trace.</summary>
        public void Finish(long total)
        {
            for (int q = 0; q < _batchCounts.Length; q++)
            {
                FlushBatch(q);
            }

            if (_viewCount == 1)
            {
                _viewAccesses[0] = total;
            }
        }

        // The common case, kept lean: one view (the host p2m), scalar translation, specialized
        // on the translator (TLB or walk) so the loop holds no branch or call for it.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void ReplayHostScalar<T>(ReadOnlySpan<TraceAccess> chunk, T translator)
            where T : struct, ITranslator
        {
            ulong pageMask = _pageMask;
            ulong guestPages = _guestPages;
            ref long levels = ref MemoryMarshal.GetArrayDataReference(_leafLevels);
            for (int i = 0; i < chunk.Length; i++)
            {
                ref readonly TraceAccess a = ref chunk[i];
                unchecked
                {
                    int k = (int)a.Kind & 3;
                    ulong gpa = GuestAddress(a.Address, pageMask, guestPages);
                    EptTranslation t = translator.Translate(gpa, (AccessKind)(1 << k));
                    if (t.Status == EptStatus.Ok)
                    {
                        Unsafe.Add(ref levels, t.Level & 7)++;
                    }
                    else
                    {
                        Fault(0, k, gpa, t);
                    }
                }
            }
        }

        // A trace address folded into the guest: page modulo the guest's pages (a mask when that
        // is a power of two), same offset.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ulong GuestAddress(ulong address, ulong pageMask, ulong guestPages)
        {
            ulong page = address >> EptEntry.PageBits;
            ulong gfn = pageMask != 0 ? page & pageMask : page % guestPages;
            return (gfn << EptEntry.PageBits) | (address & EptEntry.PageMask);
        }

        // Views dealt round-robin, and/or batched translation.
        private void ReplayGeneral(ReadOnlySpan<TraceAccess> chunk)
        {
            bool batch = _options.Batch > 0;
            for (int i = 0; i < chunk.Length; i++)
            {
                TraceAccess a = chunk[i];
                unchecked
                {
                    int k = (int)a.Kind & 3;
                    ulong gpa = GuestAddress(a.Address, _pageMask, _guestPages);
                    int view = _view;
                    if (batch)
                    {
                        Enqueue(view, k, gpa);
                    }
                    else
                    {
                        Tally(Translate(view, gpa, (AccessKind)(1 << k)), view, k, gpa);
                    }

                    _viewAccesses[view]++;
                    _view = view + 1 == _viewCount ? 0 : view + 1;
                }
            }
        }

        private EptTranslation Translate(int view, ulong gpa, AccessKind access)
        {
            SoftTlb? tlb = _guest.Tlbs[view];
            return tlb is not null ? tlb.Translate(gpa, access) : _guest.P2ms[view].Translate(gpa, access);
        }

        // The scalar translators ReplayHostScalar is specialized on.
        private interface ITranslator
        {
            EptTranslation Translate(ulong gpa, AccessKind access);
        }

        private readonly struct TlbTranslator(SoftTlb tlb) : ITranslator
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public EptTranslation Translate(ulong gpa, AccessKind access) => tlb.Translate(gpa, access);
        }

        private readonly struct WalkTranslator(P2m p2m) : ITranslator
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public EptTranslation Translate(ulong gpa, AccessKind access) => p2m.Translate(gpa, access);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Tally(in EptTranslation t, int view, int kind, ulong gpa)
        {
            if (t.Status == EptStatus.Ok)
            {
                _leafLevels[t.Level & 7]++;
            }
            else
            {
                Fault(view, kind, gpa, t);
            }
        }
    }
}
