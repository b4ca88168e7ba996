// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Diagnostics.Metrics;
using System.Linq;
using System.Reflection;
using System.Threading;

namespace FastEpt.Bench
{
    public partial class Perf_Concurrency
    {
        /// <summary>
        /// The process-wide count of reclamation barriers (<see cref="Interlocked.MemoryBarrierProcessWide"/>
        /// calls made to reclaim table frames), found at run time so this benchmark builds against
        /// any version of the library: first a <c>FastEpt</c> meter instrument whose name contains
        /// "barrier" (read through a <see cref="MeterListener"/> that enables that instrument
        /// only), else a static integer field or property of <c>FastEpt.Internal.Epoch</c> whose
        /// name contains "Barrier" (not a constant or read-only field; read by reflection). Neither: <see cref="Read"/> returns null
        /// and the rows that need it read n/a.
        /// </summary>
        internal sealed class BarrierCounter : IDisposable
        {
            private const string EpochTypeName = "FastEpt.Internal.Epoch";

            private readonly MeterListener _listener = new();
            private readonly MemberInfo? _member;
            private string? _instrumentName;
            private bool _cumulative;
            private long _observed;
            private bool _sawMeasurement;
            private int _mode;              // 0 undecided, 1 meter, 2 reflection, 3 none: fixed by the first Read

            /// <summary>
            /// Starts listening for the instrument and looks up the field. Create it after the
            /// library has written an entry: the meter's instruments are created on first use.
            /// </summary>
            public BarrierCounter()
            {
                _listener.InstrumentPublished = (instrument, l) =>
                {
                    if (instrument.Meter.Name == "FastEpt" && instrument.Name.Contains("barrier", StringComparison.OrdinalIgnoreCase) && _instrumentName is null)
                    {
                        _instrumentName = instrument.Name;
                        _cumulative = instrument.IsObservable;     // observable: totals on request; otherwise increments as they happen
                        l.EnableMeasurementEvents(instrument);
                    }
                };
                _listener.SetMeasurementEventCallback<long>((_, value, _, _) => Record(value));
                _listener.SetMeasurementEventCallback<int>((_, value, _, _) => Record(value));
                _listener.Start();

                Type? epoch = typeof(P2m).Assembly.GetType(EpochTypeName);
                const BindingFlags Static = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
                _member = epoch?.GetMembers(Static)
                    .Where(m => m.Name.Contains("Barrier", StringComparison.OrdinalIgnoreCase))
                    .FirstOrDefault(m => m is FieldInfo { FieldType: var f, IsLiteral: false, IsInitOnly: false } && (f == typeof(long) || f == typeof(int))
                                         || m is PropertyInfo { PropertyType: var p, CanRead: true } && (p == typeof(long) || p == typeof(int)));
            }

            /// <summary>Where the count comes from; null when this build has no barrier counter.</summary>
            public string? Source => (_mode == 0 ? Decide() : _mode) switch
            {
                1 => $"the meter instrument {_instrumentName}",
                2 => $"{EpochTypeName}.{_member!.Name} (reflection)",
                _ => null,
            };

            /// <summary>The barriers issued so far in this process, or null without a counter.</summary>
            public long? Read()
            {
                switch (_mode == 0 ? Decide() : _mode)
                {
                    case 1:
                        if (_cumulative)
                        {
                            // An observable instrument reports its totals (one per tag set) on request: sum this request's.
                            Interlocked.Exchange(ref _observed, 0);
                            _sawMeasurement = false;
                        }

                        _listener.RecordObservableInstruments();
                        return _sawMeasurement || !_cumulative ? Interlocked.Read(ref _observed) : null;
                    case 2:
                        object? value = _member is FieldInfo f ? f.GetValue(null) : ((PropertyInfo)_member!).GetValue(null);
                        return Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture);
                    default:
                        return null;
                }
            }

            private int Decide() => _mode = _instrumentName is not null ? 1 : _member is not null ? 2 : 3;

            /// <summary>Detaches the listener.</summary>
            public void Dispose() => _listener.Dispose();

            private void Record(long value)
            {
                Interlocked.Add(ref _observed, value);
                _sawMeasurement = true;
            }
        }
    }
}
