"""Order endpoints for the shop back office."""

from flask import Blueprint, jsonify, request

from .db import get_db

bp = Blueprint("orders", __name__)


@bp.get("/orders/<int:order_id>")
def get_order(order_id):
    cur = get_db().cursor()
    cur.execute("SELECT id, customer, total_cents, status FROM orders WHERE id = %s", (order_id,))
    row = cur.fetchone()
    if row is None:
        return jsonify({"error": "not found"}), 404
    return jsonify({"id": row[0], "customer": row[1], "total_cents": row[2], "status": row[3]})
