"""labourmatch's matching engine: records, rules, scores and shortlist solvers.

A typical round::

    from matching import MatchingEngine, RoundConfig, summarise_round

    engine = MatchingEngine.from_fixtures(cache_dir=Path("~/.cache/labourmatch"))
    result = engine.run_round(registrants, vacancies, agreements, config=RoundConfig())
    report = summarise_round(result)
"""

from matching.eligibility import AgreementIndex, Reason, evaluate_eligibility
from matching.embedding import LabelEncoder, load_sentence_model
from matching.exceptions import (
    InfeasibleProblemError,
    InputError,
    InvalidRecordsError,
    LabourmatchError,
    ModelLoadError,
    RecordError,
    SolverError,
    SolverFailedError,
    TaxonomyError,
)
from matching.features import FeatureBuilder, RegistrantFeatures, VacancyProfile
from matching.models import (
    BilateralAgreement,
    Employer,
    LanguageCertificate,
    LanguageRequirement,
    OccupationClaim,
    Qualification,
    QuotaCell,
    RecognitionRule,
    Registrant,
    Vacancy,
)
from matching.normalise import ConceptMatch, Normaliser
from matching.problem import ShortlistProblem, ShortlistSolution, SolveStatus
from matching.rounds import MatchingEngine, RoundConfig, RoundResult, summarise_round
from matching.scoring import ScoreWeights, score_vacancy
from matching.solvers import solve_exact, solve_greedy, solve_relaxed, solve_shortlists
from matching.synth import MarketSpec, SyntheticMarket, generate_market
from matching.taxonomy import Taxonomy, load_taxonomy

__all__ = [
    "AgreementIndex",
    "BilateralAgreement",
    "ConceptMatch",
    "Employer",
    "FeatureBuilder",
    "InfeasibleProblemError",
    "InputError",
    "InvalidRecordsError",
    "LabelEncoder",
    "LabourmatchError",
    "LanguageCertificate",
    "LanguageRequirement",
    "MarketSpec",
    "MatchingEngine",
    "ModelLoadError",
    "Normaliser",
    "OccupationClaim",
    "Qualification",
    "QuotaCell",
    "Reason",
    "RecognitionRule",
    "RecordError",
    "Registrant",
    "RegistrantFeatures",
    "RoundConfig",
    "RoundResult",
    "ScoreWeights",
    "ShortlistProblem",
    "ShortlistSolution",
    "SolveStatus",
    "SolverError",
    "SolverFailedError",
    "SyntheticMarket",
    "Taxonomy",
    "TaxonomyError",
    "Vacancy",
    "VacancyProfile",
    "evaluate_eligibility",
    "generate_market",
    "load_sentence_model",
    "load_taxonomy",
    "score_vacancy",
    "solve_exact",
    "solve_greedy",
    "solve_relaxed",
    "solve_shortlists",
    "summarise_round",
]
