"""``taskgate doctor --token``: why this server accepts or refuses one token.

The verdict comes from the server's own code: its validator (the keys, audience, issuer
and leeway ``taskgate.runtime`` gives a server), then its token gate
(``token_standing.gate_refusal``). Only once that has named the failed check are the
token's header and claims read without verification, to tell the particulars (how long
ago it expired, which ``aud`` it carries). Only claims that are no secret are ever
shown: never the token, its signature or its ``jti``.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt

from taskgate.doctor.config_checks import describe_error
from taskgate.runtime import engine_from_settings, load_key_material, token_services
from taskgate.services.token_standing import Standing, StandingLookup, gate_refusal
from taskgate.settings import Settings
from taskgate.tokens import InvalidToken, Refusal, TaskToken, TokenType, TokenValidator


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str | None  # the refusal code, as in the Taskgate-Reason header
    explanation: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "reason": self.reason,
                "explanation": self.explanation}


class CannotJudge(Exception):
    """The keys or the database this judgement needs cannot be used (``taskgate doctor``
    without ``--token`` says why)."""


def _at(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _show(value: Any) -> str:
    """A claim value for a message: JSON, cut short (a forged token may carry anything)."""
    shown = json.dumps(value, default=str)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _unverified(raw: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims, unverified, or empty where unreadable."""
    try:
        header = jwt.get_unverified_header(raw)
    except jwt.PyJWTError:
        header = {}
    try:
        claims = jwt.decode(raw, options={"verify_signature": False})
    except jwt.PyJWTError:
        claims = {}
    return header, claims if isinstance(claims, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _invalid(
    exc: InvalidToken, raw: str, validator: TokenValidator, now: float
) -> list[str]:
    """What failed, in particulars, for a refusal of the validator."""
    header, claims = _unverified(raw)
    kid, alg = header.get("kid"), header.get("alg")
    keys = {key.kid: key for key in validator.keys}
    refusal = exc.refusal
    if refusal is Refusal.TOKEN_TOO_LARGE:
        return [(f"the token is {len(raw)} bytes; this server reads at most "
                f"{validator.max_token_bytes}")]
    if refusal is Refusal.UNKNOWN_KEY:
        named = f"kid {_show(kid)}" if kid is not None else "the token names no kid, and"
        return [f"{named} not in this server's keys (known: {', '.join(keys)})",
                ("this server accepts its signing key, TASKGATE_JWKS_URL's keys and the "
                "accepted-keys file's; a token of another deployment, or of a key not "
                "distributed yet, is refused")]
    if refusal is Refusal.ALGORITHM_NOT_ALLOWED and kid in keys:
        return [f"alg {_show(alg)} is not kid {kid}'s {keys[kid].algorithm}"]
    if refusal is Refusal.BAD_SIGNATURE:
        return [(f"signature does not verify with kid {kid} ({alg}): the token was altered, "
                "or signed by another key under that kid")]
    if refusal is Refusal.TOKEN_EXPIRED and (exp := _number(claims.get("exp"))) is not None:
        return [(f"expired {now - exp:.0f} s ago (exp {_at(exp)}; leeway "
                f"{validator.leeway} s)")]
    if refusal is Refusal.NOT_YET_VALID:
        starts = [t for t in (_number(claims.get("iat")), _number(claims.get("nbf")))
                  if t is not None]
        if starts:
            ahead = max(starts) - now
            return [(f"not valid for another {ahead - validator.leeway:.0f} s (iat/nbf "
                    f"{ahead:.0f} s ahead of this clock, leeway {validator.leeway} s): "
                    "compare the issuing host's clock with this one's")]
    if refusal is Refusal.AUDIENCE_MISMATCH:
        return [f"aud is {_show(claims.get('aud'))}, expected {_show(validator.audience)}"]
    if refusal is Refusal.ISSUER_MISMATCH:
        return [f"iss is {_show(claims.get('iss'))}, expected {_show(validator.issuer)}"]
    if refusal is Refusal.INVALID_SCOPE:
        known = ", ".join(t.value for t in TokenType)
        return [(f"scope {_show(claims.get('scope'))} is not a token type this server knows "
                f"({known})")]
    # The validator's own words (PyJWT's, or the token schema's): they name no secret.
    return [exc.reason]


def _refused_by_gate(refusal: Refusal, token: TaskToken, standing: Standing | None) -> str:
    if refusal is Refusal.WORKLOAD_TOKEN_REUSED:
        return ("the workload token was already used: it started the TI once; queue the TI "
                "again (`taskgate ti queue`) for a new one")
    if refusal is Refusal.REVOKED and standing and standing.tokens_not_before is not None:
        return (f"signed at {_at(token.iat)}, before the TI's revocation at "
                f"{_at(standing.tokens_not_before)} (`taskgate tokens revoke`, or a newer "
                "try queued)")
    if refusal is Refusal.TI_ENDED and standing is not None:
        return (f"the TI has ended (state {standing.state}): its tokens are refused, except "
                "on /run and /state, where the state machine answers")
    return refusal.message


def _accepted(raw: str, token: TaskToken, standing: Standing | None, now: float) -> list[str]:
    header, claims = jwt.get_unverified_header(raw), token.claims  # both verified by now
    lines = [
        f"signed by kid {header.get('kid')} ({header.get('alg')}); aud {_show(claims.get('aud'))}"
        + (f", iss {_show(claims['iss'])}" if "iss" in claims else ""),
        (f"{token.token_type.value} token for TI {token.sub}, expires in "
         f"{token.exp - now:.0f} s ({_at(token.exp)})"),
    ]
    if token.token_type is TokenType.WORKLOAD:
        lines.append("scope 'workload' is only accepted on /run, which exchanges it for an "
                     "execution token")
    if standing is None:
        lines.append(f"TI {token.sub} is not in this database: its routes answer 404")
    else:
        lines.append(f"TI {standing.dag_id}/{standing.run_id}/{standing.task_id} is "
                     f"{standing.state}")
    return lines


async def judge_token(
    settings: Settings, raw: str, *, ti: uuid.UUID | None = None, now: float | None = None
) -> Verdict:
    """The server's verdict on ``raw`` (for TI ``ti``, when given), explained.

    Judged as a route of the token's own type would: an execution token on the
    Execution API's routes, a workload token on /run (whose state machine, not the
    token gate, answers for an ended TI)."""
    try:
        material = load_key_material(settings, create=False)
    except Exception as exc:  # noqa: BLE001 - the server would not start either
        raise CannotJudge(f"this server's keys cannot be loaded: {exc}") from None
    # The server's own factory: the same keys, audience, issuer and leeway.
    validator = token_services(settings, material)[0].validator
    now = time.time() if now is None else now
    try:
        token = validator.validate(raw)
    except InvalidToken as exc:
        return Verdict(False, exc.refusal.code, _invalid(exc, raw, validator, now))
    if ti is not None and token.sub != ti:
        return Verdict(False, Refusal.SUBJECT_MISMATCH.code,
                       [f"token is for TI {token.sub}, not --ti {ti}"])
    engine = engine_from_settings(settings)
    # Cached for the length of this judgement: the gate and the explanation read the
    # TI's standing once.
    lookup = StandingLookup(engine, ttl=60)
    try:
        refusal = await gate_refusal(
            lookup, token, state_machine_route=token.token_type is TokenType.WORKLOAD
        )
        standing = await lookup.get(token.sub)
    except Exception as exc:  # noqa: BLE001 - the token gate could not be read
        raise CannotJudge(
            "the signature and claims are valid, but the database cannot be read for the "
            f"token gate: {describe_error(exc, settings.effective_database_url)}"
        ) from None
    finally:
        await engine.dispose()
    if refusal is not None:
        return Verdict(False, refusal.code, [_refused_by_gate(refusal, token, standing)])
    return Verdict(True, None, _accepted(raw, token, standing, now))
