#!/usr/bin/env python3
"""Run the real SAM translator (PyPI `aws-sam-translator`) on every SAM fixture in
templates/ and store its output next to the fixture as `<name>.golden.json`.

The Rust test `tests/sam_goldens.rs` compares Kindling's transform with these files.
See README.md in this folder for how and when to run it.
"""

import json
import pathlib
import sys

import yaml
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

HERE = pathlib.Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"


def _intrinsic(loader, tag_suffix, node):
    # CloudFormation short forms: !Ref / !Condition keep their names, the rest become Fn::<Name>;
    # !GetAtt "A.B" splits on the first dot.
    name = tag_suffix
    key = name if name in ("Ref", "Condition") else "Fn::" + name
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


class CfnLoader(yaml.SafeLoader):
    pass


CfnLoader.add_multi_constructor("!", _intrinsic)
# Like SAM CLI's loader: timestamps stay strings (`Version: 2012-10-17`).
CfnLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


class BundledPolicies(ManagedPolicyLoader):
    """No IAM calls: the translator falls back to its bundled managed-policy map."""

    def __init__(self):
        pass

    def load(self):
        return {}


def load(path):
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.load(text, Loader=CfnLoader)


def main(argv):
    wanted = set(argv[1:])
    for path in sorted(TEMPLATES.iterdir()):
        if path.name.endswith(".golden.json") or not path.name.startswith("sam-"):
            continue
        if wanted and path.name not in wanted:
            continue
        template = load(path)
        parameters = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
        out = transform(template, parameters, BundledPolicies())
        golden = path.with_name(path.name.rsplit(".", 1)[0] + ".golden.json")
        golden.write_text(json.dumps(out, indent=2) + "\n")
        print(f"{path.name} -> {golden.name}: {len(out.get('Resources', {}))} resources")


if __name__ == "__main__":
    main(sys.argv)
