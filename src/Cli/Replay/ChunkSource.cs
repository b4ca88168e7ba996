// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;
using FastEpt.Cli.Traces;

namespace FastEpt.Cli.Replay
{
    /// <summary>
    /// Hands a trace to the replay engine chunk by chunk, calling a per-chunk action (the
    /// engine's trace statistics) on each one first. With read-ahead, a background task reads,
    /// decodes and runs the action on the next chunks while the engine translates the current
    /// one (three buffers cycle between them), so the two halves overlap on two cores; without
    /// it, each chunk is read and acted on by the calling thread. Either way both see the same
    /// chunks in the same order, and the action's state belongs to one thread at a time (the
    /// producer until it ends, then whoever disposes this).
    /// </summary>
    internal sealed class ChunkSource : IDisposable
    {
        /// <summary>What runs on each chunk as it is read.</summary>
        public delegate void ChunkAction(ReadOnlySpan<TraceAccess> chunk);

        private const int ReadAheadBuffers = 3;

        private readonly ITraceReader _reader;
        private readonly int _chunkSize;
        private readonly ChunkAction _onRead;
        private readonly CancellationToken _cancellationToken;
        private readonly TraceAccess[]? _single;
        private readonly BlockingCollection<TraceAccess[]>? _free;
        private readonly BlockingCollection<Chunk>? _full;
        private readonly CancellationTokenSource? _stop;
        private readonly Task? _producer;
        private TraceAccess[]? _current;
        private bool _done;

        private readonly record struct Chunk(TraceAccess[] Buffer, int Count, long Done, long Total);

        public ChunkSource(ITraceReader reader, int chunkSize, bool readAhead, ChunkAction onRead, CancellationToken cancellationToken)
        {
            _reader = reader;
            _chunkSize = chunkSize;
            _onRead = onRead;
            _cancellationToken = cancellationToken;
            if (!readAhead)
            {
                _single = ArrayPool<TraceAccess>.Shared.Rent(chunkSize);
                return;
            }

            _free = new BlockingCollection<TraceAccess[]>();
            _full = new BlockingCollection<Chunk>();
            for (int i = 0; i < ReadAheadBuffers; i++)
            {
                _free.Add(ArrayPool<TraceAccess>.Shared.Rent(chunkSize));
            }

            _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            _producer = Task.Run(Produce);
        }

        /// <summary>Where the reader was after the chunk last returned (for progress).</summary>
        public (long Done, long Total) Position { get; private set; }

        /// <summary>The next chunk; false at the end of the trace. An exception of the reader or the action is rethrown here.</summary>
        /// <exception cref="OperationCanceledException">The replay was cancelled.</exception>
        public bool TryNext(out ReadOnlySpan<TraceAccess> chunk)
        {
            chunk = default;
            if (_done)
            {
                return false;
            }

            _cancellationToken.ThrowIfCancellationRequested();
            if (_single is not null)
            {
                int n = _reader.Read(_single.AsSpan(0, _chunkSize));
                Position = _reader.Position;
                chunk = _single.AsSpan(0, n);
                _onRead(chunk);
                _done = n == 0;
                return !_done;
            }

            if (_current is not null)
            {
                _free!.Add(_current);
                _current = null;
            }

            if (!_full!.TryTake(out Chunk c, Timeout.Infinite, _cancellationToken))
            {
                // Adding completed without a final chunk: the reader failed.
                _done = true;
                ThrowProducerFailure();
                return false;
            }

            Position = (c.Done, c.Total);
            if (c.Count == 0)
            {
                _done = true;
                _free!.Add(c.Buffer);
                return false;
            }

            _current = c.Buffer;
            chunk = c.Buffer.AsSpan(0, c.Count);
            return true;
        }

        public void Dispose()
        {
            if (_single is not null)
            {
                ArrayPool<TraceAccess>.Shared.Return(_single);
                return;
            }

            _stop!.Cancel();
            try
            {
                // The producer only blocks taking a free buffer, which the cancellation ends.
                _producer!.Wait();
            }
            catch (AggregateException)
            {
                // A reader failure nobody asked for any more (the replay already stopped).
            }

            foreach (TraceAccess[] b in _free!)
            {
                ArrayPool<TraceAccess>.Shared.Return(b);
            }

            while (_full!.TryTake(out Chunk c))
            {
                ArrayPool<TraceAccess>.Shared.Return(c.Buffer);
            }

            if (_current is not null)
            {
                ArrayPool<TraceAccess>.Shared.Return(_current);
            }

            _free.Dispose();
            _full.Dispose();
            _stop.Dispose();
        }

        private void Produce()
        {
            try
            {
                while (true)
                {
                    TraceAccess[] buffer = _free!.Take(_stop!.Token);
                    int n = _reader.Read(buffer.AsSpan(0, _chunkSize));
                    (long done, long total) = _reader.Position;
                    _onRead(buffer.AsSpan(0, n));
                    _full!.Add(new Chunk(buffer, n, done, total));
                    if (n == 0)
                    {
                        return;
                    }
                }
            }
            catch (OperationCanceledException) when (_stop!.IsCancellationRequested)
            {
                // Stopped by Dispose (or the caller's cancellation).
            }
            finally
            {
                _full!.CompleteAdding();
            }
        }

        private void ThrowProducerFailure()
        {
            try
            {
                _producer!.Wait();
            }
            catch (AggregateException e) when (e.InnerExceptions.Count == 1)
            {
                ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            }

            _cancellationToken.ThrowIfCancellationRequested();
        }
    }
}
