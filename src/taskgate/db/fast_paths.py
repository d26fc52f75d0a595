"""The fast paths: where taskgate reaches below a library's public API for speed, and
the one switch back to the public paths.

==========================  ==============================================  ==========================================
module                      what it relies on                               with the fast paths off
==========================  ==============================================  ==========================================
``sqlite``                  aiosqlite's single dispatch point,              aiosqlite as shipped: every call on its
                            ``Connection._execute``, overridden             helper thread
``pool``                    SQLAlchemy's ``util.queue.AsyncAdaptedQueue``   SQLAlchemy's ``AsyncAdaptedQueuePool``
                            (subclassed: waiters served in order) and       (overflow connections closed on return)
                            ``QueuePool._do_return_conn`` (overridden:
                            overflow connections kept until idle)
``direct``                  ``compiled.positiontup``, the pool's raw        every statement through a SQLAlchemy
                            connection and the driver's own calls           ``Connection`` (``execute``), in a
                                                                            transaction of its own
``greenlets``               SQLAlchemy's ``__sqlalchemy_greenlet_provider__``  not used (``direct`` alone uses it)
                            marker on greenlets it did not start
``session`` (asyncpg)       nothing private; its one-query liveness test    SQLAlchemy's ``pool_pre_ping``
                            is on with the fast paths only
==========================  ==============================================  ==========================================

The switch is ``EngineOptions.fast_paths`` (``TASKGATE_DB_FAST_PATHS``, default on),
given to ``create_engine`` and recorded on the engine as an execution option, so code
holding an engine asks ``enabled(engine)``. With it off, nothing below any library's
public API runs: an operator's way out when a library release breaks a fast path.

The fast paths were proven on the SQLAlchemy and aiosqlite releases that the upper
bounds in ``pyproject.toml`` admit; CI runs the whole suite once with them on and once
off, so both stay correct.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

OPTION = "taskgate_fast_paths"


def enabled(engine: AsyncEngine) -> bool:
    """Whether ``engine`` was made with the fast paths on."""
    return bool(engine.sync_engine.get_execution_options().get(OPTION, False))
