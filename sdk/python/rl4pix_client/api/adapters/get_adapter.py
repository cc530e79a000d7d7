from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.adapter_out import AdapterOut
from ...models.error_body import ErrorBody
from ...types import Response


def _get_kwargs(
    adapter_id: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/adapters/{adapter_id}".format(
            adapter_id=quote(str(adapter_id), safe=""),
        ),
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> AdapterOut | ErrorBody | None:
    if response.status_code == 200:
        response_200 = AdapterOut.from_dict(response.json())

        return response_200

    if response.status_code == 401:
        response_401 = ErrorBody.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = ErrorBody.from_dict(response.json())

        return response_404

    if response.status_code == 422:
        response_422 = ErrorBody.from_dict(response.json())

        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[AdapterOut | ErrorBody]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    adapter_id: str,
    *,
    client: AuthenticatedClient,
) -> Response[AdapterOut | ErrorBody]:
    """Get Adapter

    Args:
        adapter_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AdapterOut | ErrorBody]
    """

    kwargs = _get_kwargs(
        adapter_id=adapter_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    adapter_id: str,
    *,
    client: AuthenticatedClient,
) -> AdapterOut | ErrorBody | None:
    """Get Adapter

    Args:
        adapter_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AdapterOut | ErrorBody
    """

    return sync_detailed(
        adapter_id=adapter_id,
        client=client,
    ).parsed


async def asyncio_detailed(
    adapter_id: str,
    *,
    client: AuthenticatedClient,
) -> Response[AdapterOut | ErrorBody]:
    """Get Adapter

    Args:
        adapter_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AdapterOut | ErrorBody]
    """

    kwargs = _get_kwargs(
        adapter_id=adapter_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    adapter_id: str,
    *,
    client: AuthenticatedClient,
) -> AdapterOut | ErrorBody | None:
    """Get Adapter

    Args:
        adapter_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AdapterOut | ErrorBody
    """

    return (
        await asyncio_detailed(
            adapter_id=adapter_id,
            client=client,
        )
    ).parsed
