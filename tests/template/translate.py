"""Prints infra/template.yaml as CloudFormation sees it after the SAM transform, as JSON.

Used by tests/integration/template_policies.rs: some promises (one API stage, say)
hold only in what SAM generates, not in the template we write. Runs offline with
samtranslator (installed with the SAM CLI into .tools/venv). Local `CodeUri`s are
replaced by dummy S3 locations first, as `sam validate` does.
"""
import json
import os
import sys

# The transform fills in pseudo parameters (AWS::Region) from the session; any region will do.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names no AWS managed policies, so none need looking up."""

    def load(self):
        return {}


def main(path):
    with open(path) as f:
        template = yaml_parse(f.read())
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
    print(json.dumps(transform(template, {}, NoManagedPolicies()), default=str))


if __name__ == "__main__":
    main(sys.argv[1])
