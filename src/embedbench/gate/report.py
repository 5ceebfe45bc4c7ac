"""The gate's report: typed (pydantic) for JSON, and a markdown summary for GitHub step summaries."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TaskVerdict = Literal["pass", "fail", "inconclusive"]


class GateSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: str | None = Field(None, description="the eval plan whose gate thresholds apply, if any")
    metric: str | None = Field(None, description="metric override (None: each task's main score)")
    max_task_drop: float = Field(description="allowed absolute drop of a task's mean score")
    max_suite_drop: float | None = Field(description="allowed drop of a suite's task average (None: unchecked)")
    alpha: float = Field(description="family-wise error rate; Holm-adjusted p below it is significant")
    min_queries: int = Field(description="tasks with fewer paired queries are inconclusive")
    resamples: int = Field(description="sign-flip resamples per task (raised for large task families)")
    bootstrap_resamples: int = Field(description="bootstrap resamples per task for the CI")
    seed: int
    confidence: float = 0.95
    test: str = "one-sided paired sign-flip randomization test (H1: candidate worse), Holm-adjusted"


class Side(BaseModel):
    model_config = ConfigDict(extra="forbid")

    selector: str
    models: list[str] = Field(description="model@revision of the compared results")
    n_results: int


class TaskComparison(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str
    task: str
    split: str
    language: str
    baseline_precision: str
    candidate_precision: str
    baseline_dim: int
    candidate_dim: int
    variant: str = Field(description="the paired variant settings, key=value joined by commas")
    metric: str
    n_queries: int
    baseline: float = Field(description="baseline mean of the metric over the paired queries")
    candidate: float
    delta: float = Field(description="candidate - baseline (negative: worse)")
    ci_low: float = Field(description="lower end of the bootstrap CI of delta")
    ci_high: float
    p_value: float = Field(description="one-sided sign-flip p-value for 'candidate worse', unadjusted")
    p_holm: float | None = Field(description="Holm-adjusted p-value (None: inconclusive, not tested)")
    verdict: TaskVerdict
    reason: str

    @property
    def drop(self) -> float:
        return -self.delta

    def setting(self) -> str:
        """Precision, dim and variant: what a suite average is taken at."""
        precision = (self.baseline_precision if self.baseline_precision == self.candidate_precision
                     else f"{self.baseline_precision}->{self.candidate_precision}")
        dim = (str(self.baseline_dim) if self.baseline_dim == self.candidate_dim
               else f"{self.baseline_dim}->{self.candidate_dim}")
        return ", ".join([precision, f"dim {dim}", *([self.variant] if self.variant else [])])

    def config(self) -> str:
        head = [self.language] if self.language else []
        if self.split != "test":
            head.append(self.split)
        return ", ".join([*head, self.setting()])

    def label(self) -> str:
        return f"{self.suite}/{self.task} ({self.config()})"


class SuiteCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str
    config: str = Field(description="precision, dim and variant the suite average is taken at")
    tasks: list[str]
    mean_drop: float = Field(description="mean over the suite's conclusive tasks of (baseline - candidate)")
    max_suite_drop: float
    significant: bool = Field(description="at least one of these tasks dropped with Holm p < alpha")
    verdict: Literal["pass", "fail"]


class GateReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: Literal["PASS", "FAIL"]
    exit_code: int = Field(description="0 pass, 1 regression")
    baseline: Side
    candidate: Side
    settings: GateSettings
    tasks: list[TaskComparison]
    suites: list[SuiteCheck] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list, description="why the gate failed, one line each")
    warnings: list[str] = Field(default_factory=list)

    def markdown(self) -> str:
        s = self.settings
        lines = [f"## embedbench gate: **{self.verdict}**", ""]
        lines.append(f"- baseline `{self.baseline.selector}`: {', '.join(f'`{m}`' for m in self.baseline.models)}")
        lines.append(f"- candidate `{self.candidate.selector}`: {', '.join(f'`{m}`' for m in self.candidate.models)}")
        rule = (f"- a task fails when its mean drop > {s.max_task_drop:g} and its Holm-adjusted p < {s.alpha:g} "
                f"({s.test}; {s.resamples:,} sign flips, {s.bootstrap_resamples:,} bootstrap resamples, seed {s.seed}); fewer than {s.min_queries} queries: inconclusive")
        lines.append(rule)
        if s.max_suite_drop is not None:
            lines.append(f"- a suite fails when its mean task drop > {s.max_suite_drop:g} and one of its tasks "
                         "dropped significantly")
        if s.plan:
            lines.append(f"- plan: `{s.plan}`")
        lines += ["", "| task | baseline | candidate | Δ | 95% CI | p (Holm) | verdict |",
                  "|---|---:|---:|---:|---|---:|---|"]
        for t in self.tasks:
            p = "n/a" if t.p_holm is None else _p(t.p_holm)
            verdict = {"pass": "pass", "fail": "**FAIL**", "inconclusive": "inconclusive"}[t.verdict]
            lines.append(
                f"| {_cell(t.suite)}/{_cell(t.task)} ({_cell(t.config())}; {t.metric}, n={t.n_queries}) | {t.baseline:.4f} | {t.candidate:.4f} "
                f"| {t.delta:+.4f} | [{t.ci_low:+.4f}, {t.ci_high:+.4f}] | {p} | {verdict} |"
            )
        if self.suites:
            lines += ["", "| suite | tasks | mean drop | allowed | significant task drop | verdict |",
                      "|---|---:|---:|---:|---|---|"]
            for c in self.suites:
                verdict = "**FAIL**" if c.verdict == "fail" else "pass"
                lines.append(f"| {_cell(c.suite)} ({_cell(c.config)}) | {len(c.tasks)} | {c.mean_drop:+.4f} "
                             f"| {c.max_suite_drop:g} | {'yes' if c.significant else 'no'} | {verdict} |")
        if self.failures:
            lines += ["", "**Failures**", ""] + [f"- {_cell(f)}" for f in self.failures]
        if self.warnings:
            lines += ["", "**Warnings**", ""] + [f"- {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"


def _p(p: float) -> str:
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
