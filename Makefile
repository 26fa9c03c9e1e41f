# The two commands of README.md. Everything they need is installed into .tools/.
.PHONY: dev test

## Run the API locally on http://127.0.0.1:9000 (DynamoDB Local + cargo lambda watch).
dev:
	bash infra/dev.sh

## Run every test against a real DynamoDB Local, plus sam validate --lint.
test:
	bash infra/test.sh
