"""The Salesforce field mapping: which Salesforce field holds which canonical column, per object, and what
`leadflow setup salesforce` creates a custom field with (`reference/salesforce_mapping.yaml` is the bundled one).

Pure models (pydantic) and their loader; the connector (salesforce.py), `doctor` (salesforce_fit.check_mapping) and
setup (salesforce_setup.py) read them. `SYSTEM` is the connector's system name: the `source` of every pulled row and
the name its budget, export guard and errors carry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadflow.pipeline.schema import BOOLEAN_COLUMNS, CANONICAL_COLUMNS, NUMERIC_COLUMNS
from leadflow.pipeline.yamlio import load_yaml, parse_model

SYSTEM: Final = "salesforce"
DEFAULT_MAPPING_PATH: Final = Path(__file__).resolve().parents[1] / "reference" / "salesforce_mapping.yaml"


class FieldSpec(BaseModel):
    """One Salesforce field ↔ one canonical column, plus what `leadflow setup salesforce` creates a custom field with.

    Field metadata defaults follow the type: string → Text(255) (a `length` above 255 makes a LongTextArea),
    number → Number(18, 0) for whole-number columns and Number(18, 2) otherwise, picklist → a restricted picklist of
    `values`. `length` is also the longest value leadflow writes: `doctor` warns when the org's field is shorter."""

    model_config = ConfigDict(extra="forbid")

    column: str
    type: Literal["string", "boolean", "datetime", "picklist", "number"] = "string"
    read: bool = True
    write: bool = True
    invert: bool = False
    values: list[str] | None = None
    label: str | None = Field(default=None, min_length=1, max_length=40,
                              description="Custom field label; default: the API name without __c, _ as spaces.")
    length: int | None = Field(default=None, ge=1, le=131_072, description="string/picklist: characters.")
    precision: int | None = Field(default=None, ge=1, le=18, description="number: total digits.")
    scale: int | None = Field(default=None, ge=0, le=17, description="number: digits after the decimal point.")
    restricted: bool = Field(default=True, description="picklist: values outside `values` are refused by the org.")

    @model_validator(mode="after")
    def _check(self) -> FieldSpec:
        if self.column not in CANONICAL_COLUMNS or self.column in ("lead_id", "source"):
            raise ValueError(f"{self.column!r} is not a mappable canonical column")
        if self.invert and self.type != "boolean":
            raise ValueError("invert applies to boolean fields only")
        if (self.type == "boolean") != (self.column in BOOLEAN_COLUMNS):
            raise ValueError(f"type {self.type!r} does not fit column {self.column!r}")
        if self.type == "number" and self.column not in NUMERIC_COLUMNS:
            raise ValueError(f"type 'number' needs a numeric column ({', '.join(NUMERIC_COLUMNS)}), "
                             f"not {self.column!r}")
        if self.length is not None and self.type not in ("string", "picklist"):
            raise ValueError("length applies to string and picklist fields only")
        if (self.precision is not None or self.scale is not None) and self.type != "number":
            raise ValueError("precision and scale apply to number fields only")
        # Defaults go straight into __dict__: `model_fields_set` keeps telling what the mapping itself declared.
        if self.type == "string" and self.length is None:
            self.__dict__["length"] = 255
        if self.type == "number":
            whole = NUMERIC_COLUMNS[self.column] == "Int64"
            if self.precision is None:
                self.__dict__["precision"] = 18
            if self.scale is None:
                self.__dict__["scale"] = 0 if whole else 2
            if self.scale is not None and self.precision is not None and self.scale > self.precision:
                raise ValueError(f"scale {self.scale} is larger than precision {self.precision}")
        return self


class ObjectMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id_field: str = "Id"
    modstamp_field: str = "SystemModstamp"
    fields: dict[str, FieldSpec]

    @model_validator(mode="after")
    def _one_field_per_column(self) -> ObjectMapping:
        for way in ("read", "write"):
            seen: dict[str, str] = {}
            for name, spec in self.fields.items():
                if getattr(spec, way):
                    if spec.column in seen:
                        raise ValueError(f"column {spec.column!r} is {way} by both {seen[spec.column]} and {name}")
                    seen[spec.column] = name
        return self

    def select(self) -> list[str]:
        """Fields to query: id, read-mapped fields, modstamp (each once)."""
        names = [self.id_field] + [n for n, s in self.fields.items() if s.read] + [self.modstamp_field]
        return list(dict.fromkeys(names))


class SalesforceMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = "1"
    objects: dict[str, ObjectMapping]

    @model_validator(mode="after")
    def _has_lead(self) -> SalesforceMapping:
        if "Lead" not in self.objects:
            raise ValueError("a mapping for Lead is required")
        return self


def load_mapping(path: Path = DEFAULT_MAPPING_PATH) -> SalesforceMapping:
    """Load and validate a field-mapping YAML; errors name the file and YAML path."""
    return parse_model(SalesforceMapping, load_yaml(path), path)
