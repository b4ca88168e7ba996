// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>
    /// An internal invariant of a FastEpt structure no longer holds: the condition Xen turns into a
    /// fatal host assertion (<c>BUG</c>/<c>ASSERT</c>). It is never thrown for a caller's argument
    /// error; it means the structure's bookkeeping and the memory it describes disagree, for
    /// example because a validated guest page table was written behind the structure's back.
    /// </summary>
    /// <remarks>
    /// The structure that threw it refuses every later operation with the same exception (the
    /// host has "crashed"); create a new one to go on.
    /// </remarks>
    public sealed class InvariantViolationException : Exception
    {
        /// <summary>Creates the exception with a default message.</summary>
        public InvariantViolationException()
            : base("A FastEpt invariant was violated.")
        {
        }

        /// <summary>Creates the exception with <paramref name="message"/>.</summary>
        /// <param name="message">Which invariant failed, and where.</param>
        public InvariantViolationException(string message)
            : base(message)
        {
        }

        /// <summary>Creates the exception with <paramref name="message"/> and the exception that revealed it.</summary>
        /// <param name="message">Which invariant failed, and where.</param>
        /// <param name="innerException">The exception that revealed the violation.</param>
        public InvariantViolationException(string message, Exception innerException)
            : base(message, innerException)
        {
        }
    }
}
