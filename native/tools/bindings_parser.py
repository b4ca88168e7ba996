# SPDX-License-Identifier: MIT
# Copyright (c) 2026 FastEpt contributors

"""gen_bindings.py's reader: fastept.h through libclang into a bindings_common.Model."""

import os
import re
import sys

from bindings_common import (C_INTEGER_TYPES, EXPORT_MACRO, FIXED_BUFFER_TYPES, HEADER_REL, LITERAL_MACROS, MACRO_PREFIX,
                             SUPPRESS_GC_TRANSITION, GenError, Model, clean_comment, sentence, xml_escape)


class Comments:
    """Comment tokens of the header, looked up by the line they end or start on."""

    def __init__(self, ci, tu, header_path):
        self.by_end_line = {}
        self.by_start_line = {}
        with open(header_path, encoding="utf-8") as f:
            self.lines = f.read().split("\n")
        for tok in tu.get_tokens(extent=tu.cursor.extent):
            if tok.kind != ci.TokenKind.COMMENT:
                continue
            loc = tok.extent
            if loc.start.file is None or os.path.realpath(loc.start.file.name) != os.path.realpath(header_path):
                continue
            entry = (loc.start.line, loc.start.column, loc.end.line, loc.end.column, tok.spelling)
            self.by_end_line.setdefault(loc.end.line, []).append(entry)
            self.by_start_line.setdefault(loc.start.line, []).append(entry)

    def preceding(self, line):
        """The comment that ends on the line above `line` and stands alone on its lines."""
        for start_line, start_col, _, end_col, text in self.by_end_line.get(line - 1, []):
            before = self.lines[start_line - 1][:start_col - 1]
            after = self.lines[line - 2][end_col - 1:]
            if before.strip() == "" and after.strip() == "":
                return clean_comment(text)
        return None

    def trailing(self, line, column):
        """The first comment starting on `line` after `column` with only , ; or spaces between."""
        for start_line, start_col, _, _, text in sorted(self.by_start_line.get(line, [])):
            if start_col <= column:
                continue
            between = self.lines[line - 1][column - 1:start_col - 1]
            if re.fullmatch(r"[\s,;]*", between):
                return clean_comment(text)
        return None


class Parser:
    def __init__(self, ci, header_path):
        self.ci = ci
        self.header_path = header_path
        index = ci.Index.create()
        args = ["-x", "c", "-std=c99", "-I", os.path.dirname(header_path)]
        self.tu = index.parse(header_path, args=args,
                              options=ci.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD)
        errors = []
        for d in self.tu.diagnostics:
            if d.severity >= ci.Diagnostic.Error:
                errors.append(f"{d.location.file}:{d.location.line}:{d.location.column}: {d.spelling}")
            elif d.severity >= ci.Diagnostic.Warning:
                print(f"gen_bindings.py: warning: {d.location.file}:{d.location.line}: {d.spelling}", file=sys.stderr)
        if errors:
            raise GenError("the header does not parse:\n  " + "\n  ".join(errors))
        self.comments = Comments(ci, self.tu, header_path)
        self.model = Model()

    def in_header(self, cursor):
        f = cursor.location.file
        return f is not None and os.path.realpath(f.name) == os.path.realpath(self.header_path)

    def where(self, cursor):
        return f"{HEADER_REL}:{cursor.location.line}"

    # --- types -------------------------------------------------------------------------

    def cs_type(self, t, context):
        K = self.ci.TypeKind
        if t.kind == K.POINTER:
            pointee = t.get_pointee()
            if pointee.kind == K.FUNCTIONPROTO or pointee.kind == K.FUNCTIONNOPROTO:
                raise GenError(f"{context}: function pointers are not supported by this generator")
            return self.cs_type(pointee, context) + "*"
        if t.kind == K.ELABORATED:
            return self.cs_type(t.get_named_type(), context)
        if t.kind == K.TYPEDEF:
            name = t.get_typedef_name() if hasattr(t, "get_typedef_name") else t.spelling
            name = re.sub(r"^const\s+", "", name).strip()
            if name in C_INTEGER_TYPES:
                return C_INTEGER_TYPES[name]
            return self.cs_type(t.get_canonical(), context)
        if t.kind == K.RECORD:
            decl = t.get_declaration()
            if decl.kind != self.ci.CursorKind.STRUCT_DECL:
                raise GenError(f"{context}: unions are not supported by this generator")
            return self.struct_name(decl)
        if t.kind == K.ENUM:
            return "int"
        builtin = {
            K.VOID: "void", K.BOOL: "byte", K.CHAR_S: "sbyte", K.SCHAR: "sbyte", K.UCHAR: "byte",
            K.SHORT: "short", K.USHORT: "ushort", K.INT: "int", K.UINT: "uint",
            K.LONGLONG: "long", K.ULONGLONG: "ulong", K.FLOAT: "float", K.DOUBLE: "double",
        }
        if t.kind in builtin:
            return builtin[t.kind]
        raise GenError(f"{context}: type '{t.spelling}' has no blittable C# mapping in this generator "
                       "(use a fixed-width integer type from stdint.h)")

    def struct_name(self, decl):
        name = decl.spelling
        if not name or "(" in name or " " in name:
            # An anonymous struct: named by the typedef that names it.
            parent = decl.semantic_parent
            for c in parent.get_children() if parent is not None else []:
                if c.kind == self.ci.CursorKind.TYPEDEF_DECL and c.underlying_typedef_type.get_declaration() == decl:
                    return c.spelling
            raise GenError(f"{self.where(decl)}: anonymous struct without a typedef name")
        return name

    # --- declarations ------------------------------------------------------------------

    def run(self):
        CK = self.ci.CursorKind
        seen_structs = set()
        # libclang lists macro definitions ahead of declarations: restore the header's order.
        cursors = [c for c in self.tu.cursor.get_children() if self.in_header(c)]
        cursors.sort(key=lambda c: (c.extent.start.line, c.extent.start.column))
        for c in cursors:
            if c.kind == CK.ENUM_DECL:
                self.enum(c)
            elif c.kind == CK.MACRO_DEFINITION:
                self.macro(c)
            elif c.kind == CK.FUNCTION_DECL:
                self.function(c)
            elif c.kind == CK.STRUCT_DECL and c.is_definition():
                name = self.struct_name(c)
                if name not in seen_structs:
                    seen_structs.add(name)
                    self.struct(c, name)
            elif c.kind == CK.TYPEDEF_DECL:
                for child in c.get_children():
                    if child.kind == CK.STRUCT_DECL and child.is_definition():
                        name = self.struct_name(child)
                        if name not in seen_structs:
                            seen_structs.add(name)
                            self.struct(child, name)
            elif c.kind == CK.UNION_DECL:
                raise GenError(f"{self.where(c)}: unions are not supported by this generator")
            elif c.kind == CK.VAR_DECL:
                raise GenError(f"{self.where(c)}: exported variables are not supported by this generator")
        self.check_tables()
        return self.model

    def check_tables(self):
        names = {f[0] for f in self.model.functions}
        missing = sorted(set(SUPPRESS_GC_TRANSITION) - names)
        if missing:
            raise GenError("SUPPRESS_GC_TRANSITION names functions the header does not declare: " + ", ".join(missing))

    def doc_of(self, cursor, line=None):
        return self.comments.preceding(line if line is not None else cursor.extent.start.line)

    def enum(self, c):
        enum_doc = self.doc_of(c)
        enum_name = c.spelling or "(anonymous)"
        members = [m for m in c.get_children() if m.kind == self.ci.CursorKind.ENUM_CONSTANT_DECL]
        cs_type = "int" if any(m.enum_value < 0 for m in members) else "uint"
        for m in members:
            doc = self.comments.trailing(m.extent.end.line, m.extent.end.column) or self.doc_of(m)
            context = f"<c>enum {xml_escape(enum_name)}</c>"
            summary = xml_escape(sentence(doc)) if doc else f"<c>{m.spelling}</c>, a value of {context}."
            remarks = f"A value of {context}" + (f": {xml_escape(sentence(enum_doc))}" if enum_doc else ".")
            self.model.constants.append((m.spelling, cs_type, str(m.enum_value), summary, remarks))

    def macro(self, c):
        name = c.spelling
        if not name.startswith(MACRO_PREFIX) or name == EXPORT_MACRO:
            return  # the export macro is an attribute, not a value (function() checks its use)
        tokens = list(c.get_tokens())
        if len(tokens) == 1:
            return  # include guard or flag macro: no value
        if tokens[1].spelling == "(" and tokens[1].extent.start.column == tokens[0].extent.end.column:
            raise GenError(f"{self.where(c)}: function-like macro {name} is not supported by this generator")
        value = [t.spelling for t in tokens[1:]]
        if len(value) == 1 and re.fullmatch(r'"[^"\\]*"', value[0]):
            # A plain string literal (FASTEPT_VERSION): a const string with the same text.
            doc = self.doc_of(c) or self.comments.trailing(c.extent.end.line, c.extent.end.column)
            text = xml_escape(sentence(doc)) if doc else f"The value of the C macro <c>{name}</c>."
            self.model.constants.append((name, "string", value[0], text, None))
            return
        cs_type = None
        if len(value) == 4 and value[0] in LITERAL_MACROS and value[1] == "(" and value[3] == ")":
            cs_type = LITERAL_MACROS[value[0]]
            literal = value[2]
        elif len(value) == 1:
            literal = value[0]
        else:
            raise GenError(f"{self.where(c)}: macro {name} = '{' '.join(value)}' is not an integer literal "
                           "this generator understands")
        m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|[1-9][0-9]*|0[0-7]*)([uUlL]*)", literal)
        if not m:
            raise GenError(f"{self.where(c)}: macro {name}: '{literal}' is not an integer literal")
        digits, suffix = m.group(1), m.group(2).lower()
        number = int(digits, 16) if digits[:2].lower() == "0x" else int(digits, 8) if digits.startswith("0") and digits != "0" else int(digits)
        if cs_type is None:
            unsigned = "u" in suffix
            wide = "l" in suffix or number > 0x7FFFFFFF
            cs_type = ("ulong" if wide else "uint") if unsigned else ("long" if wide else "int")
            if not unsigned and number > 0x7FFFFFFFFFFFFFFF:
                cs_type = "ulong"
        limits = {"int": 1 << 31, "uint": 1 << 32, "long": 1 << 63, "ulong": 1 << 64}
        if number >= limits[cs_type]:
            raise GenError(f"{self.where(c)}: macro {name}: {literal} does not fit {cs_type}")
        if digits[:2].lower() == "0x":
            cs_literal = "0x" + digits[2:].upper()
        else:
            cs_literal = str(number)
        cs_literal += {"ulong": "UL", "uint": "U", "long": "L", "int": ""}[cs_type]
        doc = self.doc_of(c) or self.comments.trailing(c.extent.end.line, c.extent.end.column)
        text = xml_escape(sentence(doc)) if doc else f"The value of the C macro <c>{name}</c>."
        self.model.constants.append((name, cs_type, cs_literal, text, None))

    def function(self, c):
        name = c.spelling
        context = f"{self.where(c)}: {name}"
        if c.type.kind == self.ci.TypeKind.FUNCTIONNOPROTO:
            raise GenError(f"{context}: declare the function with a prototype (use (void) for no parameters)")
        if c.type.is_function_variadic():
            raise GenError(f"{context}: variadic functions are not supported")
        ret = self.cs_type(c.result_type, context + " return type")
        params = []
        for i, p in enumerate(c.get_arguments()):
            pname = p.spelling or f"arg{i}"
            params.append((self.cs_type(p.type, f"{context} parameter {pname}"), pname))
        # Every function carries the export macro first (it is what makes it a library export).
        # libclang hands out the macro's expansion, so the check and the prototype read the
        # declaration's source text instead.
        start, end = c.extent.start, c.extent.end
        lines = self.comments.lines[start.line - 1:end.line]
        lines[-1] = lines[-1][:end.column - 1]
        lines[0] = lines[0][start.column - 1:]
        source = " ".join(lines).strip()
        if not source.startswith(EXPORT_MACRO + " "):
            raise GenError(f"{context}: declare it as '{EXPORT_MACRO} <type> {name}(...)': without the export "
                           "macro the library (built with hidden visibility) does not export it")
        doc = self.doc_of(c)
        prototype = re.sub(r"\s+", " ", source[len(EXPORT_MACRO):])
        prototype = re.sub(r"\s+([,)\]])", r"\1", prototype)
        prototype = re.sub(r"([(\[])\s+", r"\1", prototype)
        prototype = re.sub(r"\s+\*", " *", prototype)
        prototype = re.sub(r"\*\s+", "*", prototype)
        prototype = re.sub(r"\s+\(", "(", prototype)
        self.model.functions.append((name, ret, params, doc, prototype.rstrip(";").strip()))

    def struct(self, c, name):
        CK = self.ci.CursorKind
        K = self.ci.TypeKind
        # The comment above `typedef struct x {` (or `struct x {`) documents the type.
        doc = self.doc_of(c)
        if doc is None and c.semantic_parent is not None:
            for p in self.tu.cursor.get_children():
                if p.kind == CK.TYPEDEF_DECL and p.extent.start.line <= c.extent.start.line <= p.extent.end.line:
                    doc = self.doc_of(p)
                    break
        fields = []
        for f in c.get_children():
            if f.kind == CK.FIELD_DECL:
                context = f"{self.where(f)}: {name}.{f.spelling}"
                if f.is_bitfield():
                    raise GenError(f"{context}: bit-fields are not supported by this generator")
                t = f.type
                while t.kind == K.ELABORATED:
                    t = t.get_named_type()
                if t.kind == K.CONSTANTARRAY:
                    element = self.cs_type(t.element_type, context)
                    if element not in FIXED_BUFFER_TYPES:
                        raise GenError(f"{context}: arrays of {element} cannot be fixed buffers")
                    fields.append((f.spelling, element, t.element_count, self.field_doc(f)))
                elif t.kind in (K.INCOMPLETEARRAY, K.VARIABLEARRAY, K.DEPENDENTSIZEDARRAY):
                    raise GenError(f"{context}: flexible or variable arrays are not supported")
                else:
                    fields.append((f.spelling, self.cs_type(f.type, context), None, self.field_doc(f)))
            elif f.kind in (CK.STRUCT_DECL, CK.UNION_DECL):
                raise GenError(f"{self.where(f)}: nested struct or union declarations are not supported")
        if not fields:
            raise GenError(f"{self.where(c)}: struct {name} has no fields")
        c_type = f"struct {c.spelling}" if c.spelling == name else name
        self.model.structs.append((name, c_type, doc, fields))

    def field_doc(self, f):
        return self.comments.trailing(f.extent.end.line, f.extent.end.column) or self.doc_of(f)
