"""Local stand-ins for the services mergemeter talks to, for tests over real sockets."""

from tests.standins.openai_server import Fault, OpenAIStandIn, RecordedRequest, count_tokens

__all__ = ["Fault", "OpenAIStandIn", "RecordedRequest", "count_tokens"]
