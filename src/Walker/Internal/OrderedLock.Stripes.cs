// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Internal
{
    // Stripes: a lock (the parent, a p2m's lock) may own a set of exclusive child locks (its
    // 2 MiB-region stripes). A stripe holder excludes the parent's write side without touching
    // the parent at all on its fast path: it takes its stripe with one compare-exchange and then
    // reads the parent's state; the parent's writer sets its state with a compare-exchange and
    // then reads every stripe. Both first steps are full fences, so at least one of the two sees
    // the other: the stripe holder steps back and waits for the writer to leave, or the writer
    // waits for the stripe to be released. Region writers therefore pay for one lock, not two,
    // and still never run beside a whole-p2m operation. The parent's read side is unchanged and
    // does not exclude stripe holders (they never did exclude each other).
    internal sealed partial class OrderedLock
    {
        private OrderedLock[]? _stripes;     // set on a parent
        private OrderedLock? _parent;        // set on a stripe

        /// <summary>Makes <paramref name="stripes"/> this lock's stripes (once, before any use).</summary>
        public void AttachStripes(OrderedLock[] stripes)
        {
            Debug.Assert(_stripes is null && Array.TrueForAll(stripes, s => s._parent is null && s._stripes is null));
            foreach (OrderedLock s in stripes)
            {
                s._parent = this;
            }

            _stripes = stripes;
        }

        /// <summary>
        /// Takes this stripe (exclusive) once its parent's write side is neither held nor wanted;
        /// while this stripe is held the parent's writer cannot get in. Must not be called by a
        /// thread that holds the parent for writing (it would wait for itself).
        /// </summary>
        public Scope EnterStripe()
        {
            OrderedLock parent = _parent!;
            bool tracked = CheckOrder;
            if (tracked)
            {
                if (parent.IsHeldByCurrentThread || parent.IsReadByCurrentThread())
                {
                    // Writing: it would wait for itself. Reading: once a writer of the parent
                    // queues, this stripe waits for that writer, which waits for this reader.
                    throw new LockRecursionException($"Stripe '{Name}' taken by a thread that holds its parent '{parent.Name}'.");
                }

                CheckBeforeEnter(read: false);
            }

            while (true)
            {
                if (Interlocked.CompareExchange(ref _state, WriterHeld, 0) != 0)
                {
                    EnterWriteSlow();
                }

                // The compare-exchange was a full fence: the parent's state is read after it.
                if (Volatile.Read(ref parent._state) == 0 && Volatile.Read(ref parent._writersWaiting) == 0)
                {
                    Volatile.Write(ref _owner, Environment.CurrentManagedThreadId);
                    return new Scope(this, tracked, read: false);
                }

                // A writer of the parent holds it or waits for it: step back (it may wait for
                // this stripe) and let it through before trying again.
                Interlocked.Exchange(ref _state, 0);
                Wake();
                parent.Wake();
                parent.Acquire(static p => Volatile.Read(ref p._state) == 0 && Volatile.Read(ref p._writersWaiting) == 0);
            }
        }

        // Whether the calling thread holds this lock's read side (checker bookkeeping only).
        private bool IsReadByCurrentThread()
        {
            Held[]? held = t_held;
            for (int i = 0; i < t_depth; i++)
            {
                if (ReferenceEquals(held![i].Lock, this) && held[i].Read)
                {
                    return true;
                }
            }

            return false;
        }

        private bool AnyStripeHeld()
        {
            foreach (OrderedLock s in _stripes!)
            {
                if (Volatile.Read(ref s._state) != 0)
                {
                    return true;
                }
            }

            return false;
        }

        // The writer owns _state; stripe holders that came before it finish their write.
        private void WaitForStripesToDrain()
        {
            Interlocked.Increment(ref _writersWaiting);
            try
            {
                Acquire(static l => !l.AnyStripeHeld());
            }
            finally
            {
                Interlocked.Decrement(ref _writersWaiting);
            }
        }
    }
}
