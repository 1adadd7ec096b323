"""The predictor registry's rows (the model files live in the model directory)."""

from __future__ import annotations

import json
from typing import Any

from lde.errors import LDEError
from lde.store.connection import Connection
from tapas.core.types import (
    PredictorIdError,
    PredictorInfo,
    check_predictor_id,
    covering_first,
    is_model_file_name,
)


class Predictors(Connection):
    """The ``predictors`` table."""

    def register_predictor(self, id: str, dcn: float, tau: float, dcn_lo: float, dcn_hi: float,
                           snapshot: str, n_train: int, metrics: dict[str, Any], artifact: str,
                           provenance: dict[str, Any]) -> None:
        """Record a trained predictor (replacing one of the same id). ``id`` must be a
        predictor id and ``artifact`` a plain file name in the model directory: neither is
        ever a path (an older database's absolute artifacts are still read, never written)."""
        try:
            check_predictor_id(id)
        except PredictorIdError as e:
            raise LDEError(str(e)) from None
        if not is_model_file_name(artifact):
            raise LDEError(f"predictor {id}: model file {str(artifact)[:80]!r} is not a plain "
                           "file name in the model directory")
        if not dcn_lo <= dcn <= dcn_hi:
            raise LDEError(f"predictor range [{dcn_lo}, {dcn_hi}] must contain its dcn {dcn}")
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO predictors (id, dcn, tau, dcn_lo, dcn_hi, "
                        "snapshot, n_train, metrics, artifact, provenance) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [id, float(dcn), float(tau), float(dcn_lo), float(dcn_hi), snapshot,
                         int(n_train), json.dumps(metrics, sort_keys=True, default=str),
                         str(artifact), json.dumps(provenance, sort_keys=True, default=str)])

    _P_COLS = ("id, dcn, tau, dcn_lo, dcn_hi, snapshot, n_train, metrics, artifact, provenance, "
               "created_at")

    @staticmethod
    def _pred(r: tuple) -> PredictorInfo:
        prov = json.loads(r[9])
        created = r[10].isoformat() if hasattr(r[10], "isoformat") else r[10]
        return PredictorInfo(r[0], float(r[1]), float(r[2]), float(r[3]), float(r[4]), r[5],
                             int(r[6]), tuple(prov.get("datasets") or ()), json.loads(r[7]),
                             r[8], None, created, prov)

    def covering_predictors(self, dcn: float, snapshot: str | None = None
                            ) -> list[PredictorInfo]:
        """Registered predictors whose [dcn_lo, dcn_hi] covers ``dcn`` (trained at
        ``snapshot``, if given), in the order they answer
        (:func:`tapas.core.types.covering_first`: nearest DCN, then newest)."""
        where, params = ("WHERE snapshot = ?", [snapshot]) if snapshot is not None else ("", [])
        rows = self._q(f"SELECT {self._P_COLS} FROM predictors {where}", params)
        return covering_first((self._pred(r) for r in rows), dcn)

    def predictors(self) -> list[PredictorInfo]:
        """Every registered predictor, oldest first."""
        return [self._pred(r) for r in
                self._q(f"SELECT {self._P_COLS} FROM predictors ORDER BY created_at, id")]

    def predictor(self, id: str) -> PredictorInfo | None:
        rows = self._q(f"SELECT {self._P_COLS} FROM predictors WHERE id = ?", [id])
        return self._pred(rows[0]) if rows else None

    def delete_predictor(self, id: str) -> bool:
        with self.transaction() as con:
            n = con.execute("SELECT count(*) FROM predictors WHERE id = ?", [id]).fetchall()[0][0]
            con.execute("DELETE FROM predictors WHERE id = ?", [id])
        return bool(n)
