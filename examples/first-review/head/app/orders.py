"""Order endpoints for the shop back office."""

from flask import Blueprint, jsonify, redirect, request

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


@bp.get("/orders/search")
def search_orders():
    customer = request.args.get("customer", "")
    status = request.args.get("status", "open")
    cur = get_db().cursor()
    sql = f"SELECT id, customer, total_cents FROM orders WHERE customer LIKE '%{customer}%'"
    cur.execute(sql + " AND status = %s", (status,))
    return jsonify([{"id": r[0], "customer": r[1], "total_cents": r[2]} for r in cur.fetchall()])


@bp.post("/orders/<int:order_id>/archive")
def archive_order(order_id, reasons=[]):
    cur = get_db().cursor()
    cur.execute("UPDATE orders SET archived = TRUE WHERE id = %s", (order_id,))
    get_db().commit()
    return redirect(request.args.get("back", "/orders"))
