// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.CompilerServices;

namespace FastEpt.Cli.Replay
{
    internal sealed partial class ReplayEngine
    {
        // A fault the domain resolves (Retry) is translated again, at most this many times.
        private const int MaxFaultRetries = 4;

        // A failed translation is an exit: counted by kind (violations split into not-present
        // and insufficient rights, from qualification bits 5:3), then handed to the domain as
        // the hypervisor would (lazy altp2m copy, mem_access with no listener relaxing the
        // entry); on Retry the access is translated again. A misconfiguration is counted, not
        // handled (the replay guest never builds one).
        [MethodImpl(MethodImplOptions.NoInlining)]
        private void Fault(int view, int kind, ulong gpa, EptTranslation t)
        {
            for (int attempt = 0; ; attempt++)
            {
                if (t.Status == EptStatus.Violation)
                {
                    if ((t.Qualification & 0x38) == 0)
                    {
                        _kindNotPresent[kind]++;
                        _viewNotPresent[view]++;
                    }
                    else
                    {
                        _kindRights[kind]++;
                        _viewRights[view]++;
                    }
                }
                else
                {
                    _kindMisconfigs[kind]++;
                    _viewMisconfigs[view]++;
                    _viewUnresolved[view]++;
                    return;
                }

                if (attempt == MaxFaultRetries
                    || _guest.Domain.HandleEptViolationExit(_guest.Vcpus[view], gpa, t.Qualification & 7, ~0UL) != FaultOutcome.Retry)
                {
                    _viewUnresolved[view]++;
                    return;
                }

                t = Translate(view, gpa, (AccessKind)(1 << kind));
                if (t.Status == EptStatus.Ok)
                {
                    _leafLevels[t.Level & 7]++;
                    return;
                }
            }
        }
    }
}
