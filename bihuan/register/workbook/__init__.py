"""The register workbook: one .xlsx with the sheets 单位, 户, 居民 and 人员 — template, import and export.

Modules: ``columns`` (sheets, columns, allowed values, cell parsing, result types), ``importer`` (reading and the
all-or-nothing import), ``exporter`` (template and audited export), ``staff_sheet`` (the 人员 sheet, written
through the staff actions).

Format
------
Three sheets with Chinese headers (``UNIT_COLUMNS``, ``HOUSEHOLD_COLUMNS``, ``RESIDENT_COLUMNS``) and a
说明 sheet that lists the allowed values. The header row is the first of the first ten rows that holds the
sheet's required headers (so a title row above it is tolerated); headers match after removing spaces, a hint
in brackets (half- or full-width: ``层级（1-6）``) and a ``*`` marker. Data rows follow; blank rows are skipped.
A missing sheet is an empty sheet (a file with only 居民 adds residents to existing households); other sheets
are ignored. Row numbers in errors are the row numbers Excel shows.

Import (``import_workbook``)
----------------------------
Every row is checked first; any error and nothing at all is written (the errors come back as
``(sheet, row, field, reason)``). Otherwise everything is written in one transaction, set-based
(``bulk_create`` in batches, one ``UPDATE`` per batch of households for their head and member count), with one
audit row ``register.import`` that holds the counts and the file name, never a personal value.

- 单位: the parent (上级单位编码) must be in the register or on an earlier row of the sheet; the level must be
  the parent's level + 1 and the kind must be one of that level's kinds. New units get the next free path
  under their parent (``models.child_path``, the one rule). A unit code already in the register is not moved:
  its name and aliases are updated, and a different level, kind or parent is an error.
- 户: the unit (normally a grid) must be in the register or the 单位 sheet. A household code already in the
  register, on the same unit, is left as it is (counted as unchanged; the import never edits households);
  on another unit it is an error.
- 居民: the household must be in the register or the 户 sheet. ID numbers are validated (GB 11643, 15-digit
  numbers are converted, full-width digits accepted); a number that Excel stored as a number has lost its last
  digits and is refused. Sex and birth date come from the ID number when blank and must agree when given.
  A resident whose ID number is already registered in the same household is left as it is (unchanged); in
  another household it is an error, as is the same ID number twice in the file. A resident without an ID
  number is matched by household, name and birth date instead.

So importing the same file twice changes nothing the second time. Every unit and household row must be inside
the acting user's part of the district (``access.scope_of``), and inside ``root_unit`` when one is given;
``Perm.IMPORT_REGISTER`` is required. ``acting_user=None`` is the system itself (loading a new district into an
empty register, as the ``create_*`` test helpers do): no permission or scope check, an audit row without actor.

Export (``export_workbook`` / ``write_workbook``)
-------------------------------------------------
A unit's subtree in the same format, with ID numbers and phones in full (text cells, so Excel keeps every
digit): a personal-data export, so it needs ``Perm.EXPORT_REGISTER`` and access to the unit, and it writes an
audit row ``register.export`` with the unit and the row counts. The exported unit's ancestors are not in the
file; the exported unit's 上级单位编码 is the code of its real parent, so importing the file into another
register needs that parent to exist there (an export of the whole district has a blank parent and imports into
an empty register). Rows are streamed (``values_list().iterator()``, openpyxl write-only mode), in a constant
number of queries.
"""
from .columns import (  # noqa: F401 - the workbook's public names
    HOUSEHOLD_COLUMNS,
    MANGLED,
    RESIDENT_COLUMNS,
    SHEET_HOUSEHOLDS,
    SHEET_NOTES,
    SHEET_RESIDENTS,
    SHEET_STAFF,
    SHEET_UNITS,
    SHEETS,
    STAFF_COLUMNS,
    UNIT_COLUMNS,
    Column,
    ExportCounts,
    ImportResult,
    RowError,
)
from .exporter import export_workbook, template_bytes, template_workbook, write_workbook  # noqa: F401
from .importer import import_workbook, refresh_households  # noqa: F401
