// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;

namespace FastEpt.Cli.Replay
{
    internal sealed partial class ReplayEngine
    {
        // One queue per view and kind (q = view * 3 + kind), translated with TranslateBatch when full.
        private void Enqueue(int view, int kind, ulong gpa)
        {
            int q = (view * 3) + kind;
            int c = _batchCounts[q];
            _batchGpas[q][c] = gpa;
            _batchCounts[q] = c + 1;
            if (c + 1 == _options.Batch)
            {
                FlushBatch(q);
            }
        }

        private void FlushBatch(int q)
        {
            int count = _batchCounts[q];
            if (count == 0)
            {
                return;
            }

            int view = q / 3;
            int kind = q % 3;
            var access = (AccessKind)(1 << kind);
            ReadOnlySpan<ulong> gpas = _batchGpas[q].AsSpan(0, count);
            Span<EptTranslation> results = _batchResults.AsSpan(0, count);
            SoftTlb? tlb = _guest.Tlbs[view];
            if (tlb is not null)
            {
                tlb.TranslateBatch(gpas, access, results);
            }
            else
            {
                _guest.P2ms[view].TranslateBatch(gpas, access, results);
            }

            for (int i = 0; i < results.Length; i++)
            {
                EptTranslation t = results[i];
                if (t.Status != EptStatus.Ok)
                {
                    // An earlier fault of this batch may have fixed the entry (a lazy copy of
                    // the same page): only a failure that still happens now is an exit, so
                    // batched and scalar replays count the same faults.
                    t = Translate(view, gpas[i], access);
                }

                Tally(t, view, kind, gpas[i]);
            }

            _batchCounts[q] = 0;
        }
    }
}
