from conftest import grade_request
from sandbox.v1 import sandbox_pb2 as pb


def test_grade_over_grpc(client):
    response = client.grade(grade_request("print(int(input())*2)", [("2", "4"), ("5", "10")]))
    assert response.verdict == pb.AC
    assert response.passed == 2
