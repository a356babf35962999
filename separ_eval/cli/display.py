"""Progress of a run in the terminal: live bars on a terminal, one line per finished phase elsewhere."""

from __future__ import annotations

import time

from rich.console import Console


class RunDisplay:
    """Progress fed by the loop's (phase, step, tokens) callback: live bars on a terminal, else a line per phase."""

    def __init__(self, run, console: Console):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.steps = run.config.method.steps
        self.totals = {
            "collect": run.forget.collect.n_tokens + run.retain.collect.n_tokens,
            "evaluate": run.forget.evaluate.n_tokens + run.retain.evaluate.n_tokens,
        }
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            console=console, disable=not console.is_terminal,
        )
        self.overall = self.progress.add_task("run", total=self.steps + 1, count="", rate="")
        self.phase_task = self.progress.add_task("", total=None, count="", rate="")
        self.current: tuple[str, int] | None = None
        self.started, self.tokens, self.reported = 0.0, 0, False

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self._finish_phase()
        self.progress.update(self.overall, completed=self.steps + 1 if exc[0] is None else None)
        self.progress.stop()

    def _finish_phase(self) -> None:
        """Off a terminal (logs, pipes) there are no live bars: one line per finished phase."""
        if self.current is None or self.reported or self.console.is_terminal:
            return
        self.reported = True
        phase, step = self.current
        seconds = time.perf_counter() - self.started
        rate = f", {self.tokens / seconds:,.0f} tok/s" if self.tokens and seconds > 0 else ""
        self.console.print(f"step {step}/{self.steps} {phase}: {self.tokens:,} tokens in {seconds:.1f} s{rate}",
                           highlight=False)

    def __call__(self, phase: str, step: int, n_tokens: int) -> None:
        if (phase, step) != self.current:
            self._finish_phase()
            self.current, self.started, self.tokens, self.reported = (phase, step), time.perf_counter(), 0, False
            self.progress.update(self.overall, completed=step, description=f"step {step}/{self.steps}",
                                 count=f"{step}/{self.steps + 1} evaluated")
            self.progress.reset(self.phase_task, total=self.totals.get(phase), description=phase, count="", rate="")
        self.tokens += n_tokens
        if n_tokens:
            self.progress.advance(self.phase_task, n_tokens)
        if self.totals.get(phase) and self.tokens >= self.totals[phase]:
            self._finish_phase()
        task = self.progress.tasks[self.phase_task]
        total = f"/{task.total:,.0f}" if task.total else ""
        rate = f"{task.speed:,.0f} tok/s" if task.speed else ""
        self.progress.update(self.phase_task, count=f"{task.completed:,.0f}{total} tok", rate=rate)

