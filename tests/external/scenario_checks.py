"""The checks the Databricks SDK scenarios share: a failed expectation, and an action that
must raise one of the SDK's typed errors."""

from databricks.sdk.errors import DatabricksError


class ScenarioFailure(Exception):
    """A check in the scenario did not hold."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioFailure(message)


def expect_raises(error_type, action, what: str) -> None:
    try:
        action()
    except error_type:
        return
    except DatabricksError as error:
        raise ScenarioFailure(
            f"{what}: expected {error_type.__name__}, got {type(error).__name__}: {error}"
        ) from error
    raise ScenarioFailure(f"{what}: expected {error_type.__name__}, nothing was raised")
