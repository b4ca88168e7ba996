// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Diagnostics;
using System.Threading;

namespace FastEpt.Bench
{
    public partial class Perf_Concurrency
    {
        /// <summary>
        /// One thread running one loop beside the measuring thread: started at once, released by
        /// <see cref="Go"/>, asked to stop by <see cref="Stop"/> (which joins it and rethrows what
        /// the loop threw). <see cref="Dispose"/> stops and joins it too, so a failing measurement
        /// never leaves a thread running; a thread that does not stop within
        /// <see cref="JoinLimit"/> is reported (it is a background thread: it cannot keep the
        /// process alive).
        /// </summary>
        internal sealed class BackgroundLoop : IDisposable
        {
            /// <summary>How long <see cref="Stop"/> waits for the loop to notice the stop request.</summary>
            public static readonly TimeSpan JoinLimit = TimeSpan.FromSeconds(30);

            private readonly Thread _thread;
            private readonly Func<BackgroundLoop, long> _body;
            private readonly ManualResetEventSlim _ready = new(false);
            private readonly ManualResetEventSlim _go = new(false);
            private volatile bool _stop;
            private bool _joined;
            private Exception? _error;
            private long _count;
            private long _startTicks;
            private long _endTicks;

            /// <summary>Starts a thread that waits for <see cref="Go"/>, then runs <paramref name="body"/>, which returns how much work it did.</summary>
            public BackgroundLoop(string name, Func<BackgroundLoop, long> body)
            {
                _body = body;
                _thread = new Thread(Run) { IsBackground = true, Name = name };
                _thread.Start();
            }

            /// <summary>Polled by the loop: true once <see cref="Stop"/> (or <see cref="Dispose"/>) was called.</summary>
            public bool StopRequested => _stop;

            /// <summary>Waits until the thread is running and parked before its loop.</summary>
            public void WaitReady()
            {
                if (!_ready.Wait(JoinLimit))
                {
                    throw new TimeoutException($"{_thread.Name} did not start.");
                }
            }

            /// <summary>Releases the loop.</summary>
            public void Go() => _go.Set();

            /// <summary>Stops and joins the thread; returns the loop's work count and its own running time in seconds.</summary>
            /// <exception cref="InvalidOperationException">The loop threw (the exception is the inner one).</exception>
            /// <exception cref="TimeoutException">The loop did not stop within <see cref="JoinLimit"/>.</exception>
            public (long Count, double Seconds) Stop()
            {
                Join();
                if (_error is not null)
                {
                    throw new InvalidOperationException($"{_thread.Name} failed: {_error.Message}", _error);
                }

                return (_count, (_endTicks - _startTicks) / (double)Stopwatch.Frequency);
            }

            /// <summary>Joins the thread without asking it to stop (its loop ends by itself); as <see cref="Stop"/> otherwise.</summary>
            public (long Count, double Seconds) Finish()
            {
                if (!_thread.Join(JoinLimit))
                {
                    throw new TimeoutException($"{_thread.Name} did not finish within {JoinLimit.TotalSeconds} s (a deadlock?).");
                }

                return Stop();
            }

            /// <summary>Stops and joins the thread if <see cref="Stop"/> was not called; never throws the loop's exception.</summary>
            public void Dispose()
            {
                try
                {
                    Join();
                }
                finally
                {
                    if (_joined)
                    {
                        _ready.Dispose();
                        _go.Dispose();
                    }
                }
            }

            private void Join()
            {
                if (_joined)
                {
                    return;
                }

                _stop = true;
                _go.Set();
                if (!_thread.Join(JoinLimit))
                {
                    throw new TimeoutException($"{_thread.Name} did not stop within {JoinLimit.TotalSeconds} s (a deadlock?).");
                }

                _joined = true;
            }

            private void Run()
            {
                try
                {
                    _ready.Set();
                    _go.Wait();
                    _startTicks = Stopwatch.GetTimestamp();
                    if (!_stop)
                    {
                        _count = _body(this);
                    }
                }
                catch (Exception e)
                {
                    _error = e;
                }
                finally
                {
                    _endTicks = Stopwatch.GetTimestamp();
                }
            }
        }
    }
}
