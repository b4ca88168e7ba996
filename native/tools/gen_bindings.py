#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 FastEpt contributors

"""Generates FastEpt's P/Invoke bindings and the native layout probe from fastept.h, and the
EPT entry bit constants of both languages from one table (ept_bits.py).

Usage: gen_bindings.py [--out-dir DIR] [--header PATH]

Parses native/include/fastept.h with libclang (Debian package python3-clang-14; run this
script with /usr/bin/python3, the interpreter that module is installed for) and writes,
relative to the repository root or to DIR:

  src/Interop/Generated/FastEptNative.g.cs   constants, [LibraryImport] functions, structs
  native/tests/layout.g.c                    prints every struct's size and field offsets
  src/Walker/Entries/EptEntry.Bits.g.cs      EptEntry's bit-layout constants   } from the table
  native/src/ept_bits.g.h                    the C library's EPT_* macros      } in ept_bits.py

With --out-dir the same relative paths are created under DIR, so a build can regenerate into
a temporary folder and `diff -r` the result against the committed files. The output depends
only on the header and the table: declarations keep their source order, lines end in LF,
files are UTF-8.

Mapping rules
  * Enum constants become `public const` fields of FastEptNative, typed `int` when their enum
    has a negative value and `uint` otherwise (C enums are int-sized; the unsigned type matches
    the uint32_t parameters these values are passed in). Object-like FASTEPT_* macros whose
    value is an integer literal, optionally in UINT64_C()/INT64_C()/UINT32_C()/INT32_C(),
    become constants of the matching type, and one whose value is a plain string literal
    (FASTEPT_VERSION) a `const string`; the export macro FASTEPT_API is skipped; any other
    FASTEPT_* macro is an error, so a header change cannot silently drop a constant.
  * Every function declaration must start with FASTEPT_API (an error otherwise: the library is
    built with hidden visibility, so a function without it would not be exported).
  * Functions become internal `[LibraryImport]` static partial methods (NativeWalker is the
    public way in) with the C names and blittable signatures: fixed-width integers map to the
    C# integer of the same width, every pointer to a C# pointer (const dropped), structs by
    value stay by value.
  * Structs become `[StructLayout(LayoutKind.Sequential)]` unsafe partial structs with the C
    field names (C# keywords escaped with @); arrays of primitives become fixed buffers.
  * Comments: the comment block that ends on the line just above a declaration documents it;
    a comment that follows a field or an enum constant on its own line documents that member.
    Comments are read from the token stream, so plain /* */ comments work as well as /** */.

[SuppressGCTransition] is applied from the SUPPRESS_GC_TRANSITION table (bindings_common.py): only to
functions that are short, never block, never call back into managed code and never fail in
a way that needs the runtime. Everything else keeps the normal GC transition.

Modules (siblings of this script): bindings_common.py (mapping tables, model, text helpers),
bindings_parser.py (libclang reader), bindings_emit.py (C# and C writers), ept_bits.py (the
EPT bit table and its two writers).
"""

import argparse
import glob
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the sibling modules

from bindings_common import HEADER_REL, GenError  # noqa: E402 (after the bytecode switch)
from bindings_emit import emit_c, emit_cs  # noqa: E402
from bindings_parser import Parser  # noqa: E402
import ept_bits  # noqa: E402

REPO_ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CS_OUT_REL = "src/Interop/Generated/FastEptNative.g.cs"
C_OUT_REL = "native/tests/layout.g.c"


def load_clang():
    """Imports clang.cindex and points it at a libclang; raises GenError when impossible."""
    try:
        import clang.cindex as ci
    except ImportError:
        # The pyenv `python3` on PATH lacks the Debian module: retry once with the system one.
        system_python = "/usr/bin/python3"
        if os.path.realpath(sys.executable) != os.path.realpath(system_python) and os.path.exists(system_python) \
                and os.environ.get("FASTEPT_GEN_REEXEC") != "1":
            os.environ["FASTEPT_GEN_REEXEC"] = "1"
            os.execv(system_python, [system_python, os.path.abspath(__file__)] + sys.argv[1:])
        raise GenError("cannot import clang.cindex: install python3-clang-14 (apt-get install python3-clang-14) "
                       "and run this script with /usr/bin/python3")

    candidates = []
    if os.environ.get("FASTEPT_LIBCLANG"):
        if not os.path.isfile(os.environ["FASTEPT_LIBCLANG"]):
            raise GenError(f"FASTEPT_LIBCLANG={os.environ['FASTEPT_LIBCLANG']} is not a file")
        candidates.append(os.environ["FASTEPT_LIBCLANG"])
    candidates += sorted(glob.glob("/usr/lib/llvm-14/lib/libclang-14.so*"))
    candidates += sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libclang-14.so*"))
    candidates += sorted(glob.glob("/usr/lib/llvm-*/lib/libclang.so*"))
    chosen = next((c for c in candidates if os.path.isfile(c)), None)
    if chosen is not None and not ci.Config.loaded:
        ci.Config.set_library_file(chosen)
    try:
        ci.conf.lib  # forces the shared library to load
    except Exception as e:  # LibclangError, OSError
        raise GenError(f"cannot load libclang ({chosen or 'default search'}): {e}; install libclang1-14 "
                       "or set FASTEPT_LIBCLANG to the path of libclang-14.so")
    return ci


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def main(argv):
    parser = argparse.ArgumentParser(description="Generates FastEpt's P/Invoke bindings and layout probe from fastept.h, "
                                                 "and the EPT bit constants of both languages from ept_bits.py.")
    parser.add_argument("--out-dir", default=REPO_ROOT,
                        help="root under which src/Interop/Generated/FastEptNative.g.cs, native/tests/layout.g.c, "
                             f"{ept_bits.CS_OUT_REL} and {ept_bits.C_OUT_REL} are written (default: the repository root)")
    parser.add_argument("--header", default=os.path.join(REPO_ROOT, HEADER_REL),
                        help=f"the header to read (default: {HEADER_REL}; other paths are for testing the generator)")
    args = parser.parse_args(argv)
    header = os.path.abspath(args.header)
    try:
        if not os.path.isfile(header):
            raise GenError(f"header not found: {header}")
        ci = load_clang()
        model = Parser(ci, header).run()
        cs = emit_cs(model)
        c = emit_c(model)
        bits_cs = ept_bits.emit_cs()
        bits_c = ept_bits.emit_c()
    except (GenError, ept_bits.TableError) as e:
        print(f"gen_bindings.py: error: {e}", file=sys.stderr)
        return 1
    out_dir = os.path.abspath(args.out_dir)
    write(os.path.join(out_dir, CS_OUT_REL), cs)
    write(os.path.join(out_dir, C_OUT_REL), c)
    write(os.path.join(out_dir, ept_bits.CS_OUT_REL), bits_cs)
    write(os.path.join(out_dir, ept_bits.C_OUT_REL), bits_c)
    print(f"gen_bindings.py: wrote {CS_OUT_REL} and {C_OUT_REL} under {out_dir} "
          f"({len(model.constants)} constants, {len(model.functions)} functions, {len(model.structs)} structs)")
    print(f"gen_bindings.py: wrote {ept_bits.CS_OUT_REL} and {ept_bits.C_OUT_REL} under {out_dir} "
          f"({len(ept_bits.FIELDS)} fields, {len(ept_bits.GEOMETRY)} geometry constants)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
