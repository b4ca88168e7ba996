// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    /// <summary>Outcome of a preemptible long operation.</summary>
    public enum Progress
    {
        /// <summary>The operation completed.</summary>
        Done,

        /// <summary>
        /// The operation was preempted with its progress recorded; call it again (with a fresh
        /// budget) and it continues where it stopped. Everything is consistent in between.
        /// </summary>
        Restart,

        /// <summary>The operation failed; the reason is the operation's to report.</summary>
        Failed,
    }

    /// <summary>
    /// The preemption budget of a long operation (Xen's <c>hypercall_preempt_check</c>), passed by
    /// reference: the operation asks at each preemption point whether it must stop, and each
    /// point that lets it go on uses one step.
    /// </summary>
    /// <remarks>
    /// <see cref="After"/>(k) lets an operation pass k preemption points and stops it at the next
    /// one, which is how tests interrupt an operation at every possible step: run it once with
    /// <see cref="Never"/>, read <see cref="Checks"/>, then try every k from 0 to that count.
    /// </remarks>
    public struct Preemption
    {
        private int _remaining;      // -1: never pending

        private Preemption(int remaining)
        {
            _remaining = remaining;
            Checks = 0;
        }

        /// <summary>A budget that never asks the operation to stop.</summary>
        public static Preemption Never => new(-1);

        /// <summary>A budget that lets <paramref name="steps"/> preemption points pass and stops the operation at the next.</summary>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="steps"/> is negative.</exception>
        public static Preemption After(int steps)
        {
            if (steps < 0)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(steps), steps, "The step budget cannot be negative.");
            }

            return new Preemption(steps);
        }

        /// <summary>Preemption points reached so far (those passed and the one that stopped the operation).</summary>
        public int Checks { get; private set; }

        /// <summary>True when the next preemption point stops the operation.</summary>
        public readonly bool IsPending => _remaining == 0;

        /// <summary>
        /// A preemption point: true when the operation must stop here (with its progress
        /// recorded); otherwise one step of the budget is used and it goes on.
        /// </summary>
        public bool ShouldStop()
        {
            Checks++;
            if (_remaining < 0)
            {
                return false;
            }

            if (_remaining == 0)
            {
                return true;
            }

            _remaining--;
            return false;
        }
    }
}
